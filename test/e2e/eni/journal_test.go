package eni_test

import (
	"context"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/logging"
	"github.com/nodeprep/nodeprep/internal/pci/pcitest"
)

// readmeJournalFields are the journal fields the README tells operators to
// filter on: each `journalctl -u nodeprep FIELD=` example, and the list of
// structured fields.
func readmeJournalFields(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	fields := map[string]bool{}
	for _, m := range regexp.MustCompile(`journalctl -u nodeprep ([A-Z][A-Z0-9_]*)=`).FindAllStringSubmatch(text, -1) {
		fields[m[1]] = true
	}
	list := regexp.MustCompile(`(?s)structured entries \((.*?)\)`).FindStringSubmatch(text)
	if list == nil {
		t.Fatal("README no longer lists the structured journal fields")
	}
	for _, m := range regexp.MustCompile("`([A-Z][A-Z0-9_]*)`").FindAllStringSubmatch(list[1], -1) {
		fields[m[1]] = true
	}
	out := make([]string, 0, len(fields))
	for f := range fields {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// Every journal field the README lists is set by a real run: a managed ENI
// from the simulator, hot-plugged into the netns, and a DPDK NIC bound on an
// emulated sysfs, logged through the journal handler as under systemd.
func TestREADMEJournalFieldsAreProduced(t *testing.T) {
	want := readmeJournalFields(t)
	if len(want) < 5 {
		t.Fatalf("found only %v in the README", want)
	}
	e := newEnv(t, envSpec{})
	sysfs := pcitest.New(t)
	sysfs.NoIOMMUSupported = true
	sysfs.AddNIC(pcitest.NIC{BDF: "0000:00:07.0", Driver: "ena", IfName: "ens7", MAC: "0a:00:00:00:00:07"})
	sysfs.AddModule("vfio", "kernel/drivers/vfio/vfio.ko.xz")
	sysfs.AddModule("vfio-pci", "kernel/drivers/vfio/pci/vfio-pci.ko.xz")
	e.root = sysfs.Root
	host := e.host()
	host.NICUsage, host.Kernel, host.Modprobe = sysfs.Links(), sysfs.Kernel(), sysfs.Modprobe()

	var mu sync.Mutex
	seen := map[string]bool{}
	log := slog.New(logging.NewJournalHandler(func(_ string, _ journal.Priority, vars map[string]string) error {
		mu.Lock()
		defer mu.Unlock()
		for k, v := range vars {
			if v != "" {
				seen[k] = true
			}
		}
		return nil
	}, slog.LevelDebug))
	off := false
	cfg := &api.NodePrepConfig{Spec: api.Spec{
		Interfaces: []api.Interface{
			e.managed("data1", 1, api.PrivateIPDHCP),
			{Name: "dpdk0", PCIAddress: "0000:00:07.0", Driver: api.DriverVFIOPCI, ResourceName: "dpdk"},
		},
		Multus: api.Multus{Install: &off},
	}}
	if res := e.runWith(context.Background(), host, log, cfg, false); res.err != nil {
		t.Fatal(res.err)
	}
	var missing []string
	for _, f := range want {
		if !seen[f] {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		got := make([]string, 0, len(seen))
		for f := range seen {
			got = append(got, f)
		}
		sort.Strings(got)
		t.Errorf("the README lists %s, which no log line of a run carries; fields seen: %s", strings.Join(missing, ", "), strings.Join(got, ", "))
	}
	if sysfs.Driver("0000:00:07.0") != "vfio-pci" {
		t.Error("the DPDK NIC was not bound")
	}
}

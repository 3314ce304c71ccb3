// Package doctor checks a prepared node against its config after boot and
// gives every check a verdict with its evidence and its fix. It reads the
// host through a root prefix and asks EC2 only through the interface it is
// given, so it runs offline against a copied tree as well as on a node.
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/cnibundle"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/state"
)

// Verdict is how one check came out.
type Verdict string

const (
	OK   Verdict = "ok"
	Warn Verdict = "warn"
	Fail Verdict = "fail"
)

// rank orders verdicts from best to worst.
func (v Verdict) rank() int {
	switch v {
	case OK:
		return 0
	case Warn:
		return 1
	}
	return 2
}

// Finding is one verdict about one subject (an interface, a page size, a file).
type Finding struct {
	Check   string  `json:"check"`
	Subject string  `json:"subject,omitempty"`
	Verdict Verdict `json:"verdict"`
	// Evidence is what was read that led to the verdict.
	Evidence string `json:"evidence"`
	// Fix is what to do about a warn or fail.
	Fix string `json:"fix,omitempty"`
}

// Report is the outcome of one doctor run.
type Report struct {
	Findings []Finding     `json:"findings"`
	Duration time.Duration `json:"duration"`
}

// Worst is the worst verdict in the report (OK for an empty one).
func (r Report) Worst() Verdict {
	w := OK
	for _, f := range r.Findings {
		if f.Verdict.rank() > w.rank() {
			w = f.Verdict
		}
	}
	return w
}

// Count is the number of findings with verdict v.
func (r Report) Count(v Verdict) int {
	n := 0
	for _, f := range r.Findings {
		if f.Verdict == v {
			n++
		}
	}
	return n
}

// Node is what the checks read: the host, the config the last run acted
// on and the record it left. EC2 is nil offline; the checks that need it
// then say they were not run.
type Node struct {
	Root   hostfs.Root
	Config *api.NodePrepConfig
	State  *state.File
	EC2    Describer
	// InstanceID is the instance EC2 attachments must point at; defaults to
	// the one the state file records.
	InstanceID string
	// Links reads the kernel's view of an interface; nil skips the checks
	// that need netlink (an offline root has no netlink).
	Links Links
	Now   func() time.Time
	// CNIHashes remembers the CNI binaries' hashes across runs until a file
	// changes: the watcher keeps one, so a round re-reads only a binary
	// that changed instead of the bundle's and the installed ~70 MB each
	// time. Nil (the one-shot doctor) hashes every file.
	CNIHashes *cnibundle.HashCache
}

// Check is one named check; it returns one finding per subject.
type Check struct {
	Name string
	// Cheap checks read only local files and netlink; the watcher re-runs
	// them on every event. The others ask EC2.
	Cheap bool
	Run   func(ctx context.Context, n *Node) []Finding
}

// Checks is every check doctor runs, in the order it prints them.
func Checks() []Check {
	return []Check{
		{Name: "driver", Cheap: true, Run: checkDrivers},
		{Name: "modules", Cheap: true, Run: checkModules},
		{Name: "vermagic", Cheap: true, Run: checkVermagic},
		{Name: "vfio-iommu", Cheap: true, Run: checkVFIOMode},
		{Name: "igb_uio-wc", Cheap: true, Run: checkIGBUIOWC},
		{Name: "write-combining", Cheap: true, Run: checkWriteCombining},
		{Name: "hugepages", Cheap: true, Run: checkHugepages},
		{Name: "hugepages-numa", Cheap: true, Run: checkHugepagesNUMA},
		{Name: "kubelet-hugepages", Cheap: true, Run: checkKubeletAfterHugepages},
		{Name: "kernel-args", Cheap: true, Run: checkKernelArgs},
		{Name: "cpu-profile", Cheap: true, Run: checkCPUProfile},
		{Name: "link", Cheap: true, Run: checkLinks},
		{Name: "eni", Run: checkENIs},
		{Name: "conflist", Cheap: true, Run: checkConflists},
		{Name: "device-plugin", Cheap: true, Run: checkDevicePlugin},
		{Name: "cni-binaries", Cheap: true, Run: checkCNIBinaries},
		{Name: "multus-conf", Cheap: true, Run: checkMultusConf},
	}
}

// Run runs checks against n; a check that panics is not caught: checks
// read, they do not guess.
func Run(ctx context.Context, n *Node, checks []Check) Report {
	if n.Now == nil {
		n.Now = time.Now
	}
	if n.InstanceID == "" && n.State != nil {
		n.InstanceID = n.State.InstanceID
	}
	start := n.Now()
	var out Report
	for _, c := range checks {
		if ctx.Err() != nil {
			out.Findings = append(out.Findings, Finding{Check: c.Name, Verdict: Warn, Evidence: "not run: " + ctx.Err().Error()})
			continue
		}
		for _, f := range c.Run(ctx, n) {
			f.Check = c.Name
			out.Findings = append(out.Findings, f)
		}
	}
	out.Duration = n.Now().Sub(start)
	return out
}

// Cheap filters the checks the watcher re-runs on local events.
func Cheap(checks []Check) []Check {
	var out []Check
	for _, c := range checks {
		if c.Cheap {
			out = append(out, c)
		}
	}
	return out
}

// WriteTable prints the report for a person: one row per finding, with
// the fix under each warn or fail.
func WriteTable(w io.Writer, r Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERDICT\tCHECK\tSUBJECT\tEVIDENCE")
	for _, f := range r.Findings {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Verdict, f.Check, dash(f.Subject), f.Evidence)
		if f.Fix != "" && f.Verdict != OK {
			fmt.Fprintf(tw, "\t\t\tfix: %s\n", f.Fix)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d ok, %d warn, %d fail in %s\n", r.Count(OK), r.Count(Warn), r.Count(Fail), r.Duration.Round(time.Microsecond))
	return err
}

// WriteJSON prints the report as one JSON document.
func WriteJSON(w io.Writer, r Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ok(subject, evidence string) Finding {
	return Finding{Subject: subject, Verdict: OK, Evidence: evidence}
}

func warn(subject, evidence, fix string) Finding {
	return Finding{Subject: subject, Verdict: Warn, Evidence: evidence, Fix: fix}
}

func fail(subject, evidence, fix string) Finding {
	return Finding{Subject: subject, Verdict: Fail, Evidence: evidence, Fix: fix}
}

// interfaces returns the configured interfaces with what the last run
// recorded of each, in config order.
func (n *Node) interfaces() []iface {
	if n.Config == nil {
		return nil
	}
	var out []iface
	for _, in := range n.Config.Spec.Interfaces {
		i := iface{Config: in}
		if n.State != nil {
			i.State, i.Known = n.State.Interfaces[in.Name]
		}
		out = append(out, i)
	}
	return out
}

type iface struct {
	Config api.Interface
	State  state.Interface
	Known  bool
}

// pciAddress is the PCI function the bind step recorded, else the one the
// links step found under the netdev.
func (i iface) pciAddress() string {
	if a := i.State.Device.Device.Address; a != "" {
		return a
	}
	return i.State.Link.PCIAddress
}

// pciID is the recorded device's vendor:device, "" when none was recorded.
func (i iface) pciID() string {
	if i.State.Device.Device.Vendor == "" {
		return ""
	}
	return i.State.Device.Device.ID()
}

func (i iface) driver() api.Driver {
	if i.Config.Driver == "" {
		return api.DriverKernel
	}
	return i.Config.Driver
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func join(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

package doctor

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/bootstrap"
	"github.com/nodeprep/nodeprep/internal/deviceplugin"
	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/kmod"
	"github.com/nodeprep/nodeprep/internal/link"
	"github.com/nodeprep/nodeprep/internal/netconf"
	"github.com/nodeprep/nodeprep/internal/pci"
	"github.com/nodeprep/nodeprep/internal/pci/pcitest"
	"github.com/nodeprep/nodeprep/internal/state"
)

// moduleELF is a relocatable ELF object with a .modinfo section holding
// the given key=value entries, as a .ko file carries them.
func moduleELF(entries ...string) []byte {
	modinfo := []byte(strings.Join(entries, "\x00") + "\x00")
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	const ehsize, shentsize = 64, 64
	modOff := uint64(ehsize)
	strOff := modOff + uint64(len(modinfo))
	shOff := (strOff + uint64(len(shstr)) + 7) &^ 7
	var buf bytes.Buffer
	hdr := elf.Header64{
		Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Shoff: shOff, Ehsize: ehsize, Shentsize: shentsize, Shnum: 3, Shstrndx: 2,
	}
	copy(hdr.Ident[:], []byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)})
	_ = binary.Write(&buf, binary.LittleEndian, hdr)
	buf.Write(modinfo)
	buf.Write(shstr)
	buf.Write(make([]byte, shOff-uint64(buf.Len())))
	for _, s := range []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Flags: uint64(elf.SHF_ALLOC), Off: modOff, Size: uint64(len(modinfo)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstr)), Addralign: 1},
	} {
		_ = binary.Write(&buf, binary.LittleEndian, s)
	}
	return buf.Bytes()
}

const (
	bdfVFIO   = "0000:00:06.0"
	bdfIGBUIO = "0000:00:07.0"
	bdfKernel = "0000:00:05.0"
	macKernel = "02:00:00:00:00:05"
	// BAR2 of each DPDK device: ENA's prefetchable LLQ memory.
	barVFIO   = 0xfe800000
	barIGBUIO = 0xfe900000
	btime     = 1764680000
)

var modules = map[string]string{
	"vfio":             "kernel/drivers/vfio/vfio.ko",
	"vfio-pci":         "kernel/drivers/vfio/pci/vfio-pci.ko",
	"vfio_iommu_type1": "kernel/drivers/vfio/vfio_iommu_type1.ko",
	"uio":              "kernel/drivers/uio/uio.ko",
	"igb_uio":          "extra/igb_uio.ko",
}

const configYAML = `apiVersion: nodeprep.dev/v1alpha1
kind: NodePrepConfig
spec:
  interfaces:
    - name: n3
      pciAddress: "0000:00:06.0"
      driver: vfio-pci
    - name: n4
      pciAddress: "0000:00:07.0"
      driver: igb_uio
    - name: n2
      mac: "02:00:00:00:00:05"
      mtu: 9001
  hugepages:
    - {size: 2Mi, count: 512}
  multus: {install: false}
`

// fixture is a healthy prepared node on the fake kernel: every check ok.
type fixture struct {
	t    testing.TB
	h    *pcitest.Host
	node *Node
}

func (f *fixture) write(hostPath, data string) {
	f.t.Helper()
	p := f.h.Path(hostPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) remove(hostPath string) {
	f.t.Helper()
	if err := os.RemoveAll(f.h.Path(hostPath)); err != nil {
		f.t.Fatal(err)
	}
}

func resourceFile(bar uint64) string {
	lines := []string{
		fmt.Sprintf("0x%016x 0x%016x 0x%016x", uint64(0xfebf0000), uint64(0xfebf3fff), uint64(0x40200)),
		"0x0000000000000000 0x0000000000000000 0x0000000000000000",
		fmt.Sprintf("0x%016x 0x%016x 0x%016x", bar, bar+0xfffff, uint64(0x4220c)),
	}
	return strings.Join(lines, "\n") + "\n"
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	h := pcitest.New(t)
	f := &fixture{t: t, h: h}
	h.SetIOMMU(true)
	h.NoIOMMUSupported = true
	for name, rel := range modules {
		h.AddModule(name, rel)
		f.write("/lib/modules/"+pcitest.Release+"/"+rel, string(moduleELF("license=GPL", "vermagic="+pcitest.Release+" SMP preempt mod_unload modversions ", "name="+name)))
	}
	cfg, err := api.Load(api.Source{Name: "config.yaml", Data: []byte(configYAML)})
	if err != nil {
		t.Fatal(err)
	}
	// The modules as the run's modules step loads and persists them.
	mods := &kmod.Manager{Root: h.Root, Loader: h.Modprobe(), Kernel: h.Kernel()}
	_, changes, err := mods.Plan(kmod.SpecFor(cfg.Spec))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if err := c.Apply(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	h.AddNIC(pcitest.NIC{BDF: bdfVFIO, Driver: "vfio-pci"})
	h.AddNIC(pcitest.NIC{BDF: bdfIGBUIO, Driver: "igb_uio"})
	h.AddNIC(pcitest.NIC{BDF: bdfKernel, Driver: "ena", IfName: "eth2", MAC: macKernel})
	f.write("/sys/class/net/eth2/mtu", "9001\n")
	f.write("/sys/devices/pci0000:00/"+bdfVFIO+"/resource", resourceFile(barVFIO))
	f.write("/sys/devices/pci0000:00/"+bdfIGBUIO+"/resource", resourceFile(barIGBUIO))
	f.write(PATMemtypeList, fmt.Sprintf("PAT: [mem 0x00000000febf0000-0x00000000febf4000] uncached-minus\nPAT: [mem 0x%016x-0x%016x] write-combining\nPAT: [mem 0x%016x-0x%016x] write-combining\n",
		barVFIO, barVFIO+0x100000, barIGBUIO, barIGBUIO+0x100000))

	h.Memory(8<<20, 2048, 1, map[int64]int{2048: 1024}, 0)
	if err := h.Kernel().WriteAttr("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "512"); err != nil {
		t.Fatal(err)
	}
	reserved := time.Unix(btime+10, 0)
	f.write("/proc/stat", fmt.Sprintf("cpu  1 2 3 4\nbtime %d\nprocesses 99\n", btime))
	f.kubeletStartedAt(20 * time.Second)
	f.write(procCmdline, "BOOT_IMAGE=/vmlinuz root=UUID=abc ro iommu=pt\n")
	f.write(grubDefault, "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX=\"iommu=pt\"\n")
	f.write(link.NetworkFile("n2"), string(link.UnmanagedNetwork("n2", macKernel)))

	st := &state.File{
		Version: state.Version, Command: "run", InstanceID: "i-0123456789abcdef0", Result: state.ResultSucceeded,
		Steps: []engine.Result{{Name: stepHugepages, Outcome: engine.Succeeded, Started: reserved.Add(-time.Millisecond), Duration: time.Millisecond,
			Changes: []engine.ChangeRecord{{What: "reserve 512 2Mi hugepages"}}}},
		Interfaces: map[string]state.Interface{
			"n3": {Name: "n3", Device: bound("n3", bdfVFIO, api.DriverVFIOPCI)},
			"n4": {Name: "n4", Device: bound("n4", bdfIGBUIO, api.DriverIGBUIO)},
			"n2": {Name: "n2", Link: link.Info{IfName: "eth2", MAC: macKernel, PCIAddress: bdfKernel}},
		},
	}
	dp := cfg.Spec.DevicePlugin
	data, err := deviceplugin.Render(dp.ResourcePrefix, []deviceplugin.Resource{
		{Name: cfg.Spec.Interfaces[0].ResourceName, Devices: []deviceplugin.Device{{Address: bdfVFIO, Vendor: "1d0f", Device: "ec20", Driver: "vfio-pci"}}},
		{Name: cfg.Spec.Interfaces[1].ResourceName, Devices: []deviceplugin.Device{{Address: bdfIGBUIO, Vendor: "1d0f", Device: "ec20", Driver: "igb_uio"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.write(dp.ConfigPath, string(data))
	// The pod-network conflists as the run writes them.
	enis, err := bootstrap.PodNetworks(cfg, st.Interfaces)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := netconf.Write(h.Root, cfg.Spec.Multus.NetworkConfDir, enis, netconf.Options{CNIVersion: cfg.Spec.Multus.CNIVersion}); err != nil {
		t.Fatal(err)
	}
	f.node = &Node{Root: h.Root, Config: cfg, State: st}
	return f
}

// kubeletStartedAt writes a kubelet process that started d after boot.
func (f *fixture) kubeletStartedAt(d time.Duration) {
	ticks := int64(d / (time.Second / clockTicks))
	f.write("/proc/4242/comm", "kubelet\n")
	f.write("/proc/4242/stat", fmt.Sprintf("4242 (kubelet) S 1 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 12 0 %d 1000 100 18446744073709551615\n", ticks))
}

func (f *fixture) run() Report {
	return Run(context.Background(), f.node, Checks())
}

func findings(r Report, check string) []Finding {
	var out []Finding
	for _, x := range r.Findings {
		if x.Check == check {
			out = append(out, x)
		}
	}
	return out
}

const release = pcitest.Release

// bound is the bind step's record of a device it bound.
func bound(name, bdf string, driver api.Driver) pci.Binding {
	return pci.Binding{Name: name, Device: pci.Device{Address: bdf, Vendor: "1d0f", Device: "ec20", Class: "020000", Driver: string(driver)}, Driver: driver}
}

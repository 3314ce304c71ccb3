package vm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// vfioWCModules is what the Packer plugin's vfio_wc_build installs for a
// kernel without CONFIG_VFIO_NOIOMMU when no-IOMMU mode is asked for.
var vfioWCModules = []string{"vfio.ko", "vfio-pci-core.ko", "vfio-pci.ko"}

const vfioWCGuestDir = "/lib/modules/%s/updates/nodeprep-vfio-wc"

// buildVfioWC builds write-combining vfio-pci for the bed's kernel with the
// Packer plugin's own script (the same file the plugin runs on the image),
// from Debian's source and headers of that kernel and the project's patch,
// then checks it the way the plugin does at build time: in a copy of the
// kernel's module tree, after depmod, modinfo resolves every module to the
// updates/ build, with the kernel's vermagic and the patch's marker.
func buildVfioWC(t *testing.T, bed *Bed) (modDir, patchSum string) {
	t.Helper()
	kb, err := bed.KernelBuild(t.Context())
	if err != nil {
		t.Fatalf("kernel build tree: %v", err)
	}
	repo, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(repo, "packer", "provisioner", "nodeprep", "scripts", "vfio_wc_lib.sh")
	patch := filepath.Join(repo, "test", "vm", "testdata", "linux-6.1-vfio-wc.patch")
	data, err := os.ReadFile(patch)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	patchSum = hex.EncodeToString(sum[:])

	rel := bed.Kernel.Release
	// A module tree like the image's: the kernel's own modules (hard links
	// into the cache) plus updates/, so depmod and modinfo judge precedence.
	base, err := os.MkdirTemp(bed.CacheDir, ".modtree-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	tree := filepath.Join(base, "lib", "modules", rel)
	if err := os.MkdirAll(filepath.Dir(tree), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(t.Context(), "cp", "-al", bed.Kernel.ModulesDir, tree).CombinedOutput(); err != nil {
		t.Fatalf("cp -al: %v\n%s", err, out)
	}
	modDir = filepath.Join(tree, "updates", "nodeprep-vfio-wc")
	script := fmt.Sprintf(". %s\nvfio_wc_build %s %s %s %s %s 1 %s\ndepmod -b %s %s\nvfio_wc_verify %s %s %s %s\n",
		q(lib), q(rel), q(kb.Dir), q(kb.Source), q(patch), patchSum, q(modDir), q(base), q(rel), q(rel), q(modDir), patchSum, q(base))
	start := time.Now()
	out, err := exec.CommandContext(t.Context(), "sh", "-euc", script).CombinedOutput()
	if err != nil {
		t.Fatalf("vfio_wc_build/verify: %v\n%s", err, out)
	}
	t.Logf("built write-combining vfio-pci for %s (Debian %s) in %s", rel, kb.Version, time.Since(start).Round(time.Second))
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "kernel "+rel+":") {
			t.Log(l)
		}
	}
	return modDir, patchSum
}

func q(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// vfioWCScript binds the virtio NIC to the stock vfio-pci, maps its
// prefetchable BAR like DPDK and records the PAT lines, then does the same
// with the modules the plugin built. With NOIOMMU it uses no-IOMMU mode,
// which only the rebuilt vfio.ko has (Debian's lacks CONFIG_VFIO_NOIOMMU).
const vfioWCScript = `
set -u
fail() { echo "FAIL: $*"; exit 1; }
mount -t debugfs none /sys/kernel/debug 2>/dev/null || true
[ -r /sys/kernel/debug/x86/pat_memtype_list ] || fail "no /sys/kernel/debug/x86/pat_memtype_list"
bdf=$BDF
sys=/sys/bus/pci/devices/$bdf
# The prefetchable memory BAR (IORESOURCE_MEM 0x200 | IORESOURCE_PREFETCH 0x2000).
i=0 bar=
while read start end flags; do
	if [ $i -lt 6 ] && [ -z "$bar" ] && [ $((flags & 0x2200)) -eq $((0x2200)) ]; then bar=$i; fi
	i=$((i + 1))
done < $sys/resource
[ -n "$bar" ] || fail "no prefetchable BAR on $bdf"
mark bar "$bar"
u=/lib/modules/$(uname -r)/updates/nodeprep-vfio-wc

bind() {
	echo vfio-pci > $sys/driver_override
	[ ! -e $sys/driver ] || echo $bdf > $sys/driver/unbind
	echo $bdf > /sys/bus/pci/drivers_probe
	[ "$(basename $(readlink $sys/driver))" = vfio-pci ] || fail "$bdf not bound to vfio-pci"
}
groupdev() {
	if [ "$NOIOMMU" = 1 ]; then echo /dev/vfio/noiommu-$(basename $(readlink $sys/iommu_group)); else echo /dev/vfio/$(basename $(readlink $sys/iommu_group)); fi
}
measure() {
	mark $1.taint "$(cat /sys/module/vfio_pci_core/taint)"
	mark $1.vfiowc "$(/usr/bin/vfiowc $(groupdev) $bdf $bar 2>&1)"
	echo $bdf > /sys/bus/pci/drivers/vfio-pci/unbind
	for m in vfio_pci vfio_pci_core vfio_iommu_type1 vfio; do [ ! -d /sys/module/$m ] || rmmod $m || fail "rmmod $m"; done
}

if [ "$NOIOMMU" = 0 ]; then
	modprobe vfio-pci || fail "modprobe vfio-pci"
	modprobe vfio_iommu_type1 || fail "modprobe vfio_iommu_type1"
	bind
	measure stock
fi
modprobe irqbypass; modprobe vfio_virqfd
insmod $u/vfio.ko enable_unsafe_noiommu_mode=$NOIOMMU || fail "insmod vfio.ko"
[ "$NOIOMMU" = 1 ] || modprobe vfio_iommu_type1 || fail "modprobe vfio_iommu_type1"
insmod $u/vfio-pci-core.ko || fail "insmod vfio-pci-core.ko"
insmod $u/vfio-pci.ko || fail "insmod vfio-pci.ko"
bind
mark wc.noiommu_param "$(cat /sys/module/vfio/parameters/enable_unsafe_noiommu_mode)"
measure wc
`

// TestVMVfioWriteCombining: the vfio-pci the Packer plugin builds maps a
// prefetchable BAR write-combining, proven by the kernel's PAT memtype list
// while a VFIO mapping of the BAR is live; the stock module maps it uncached.
// Subtest noiommu does it in no-IOMMU mode (no vIOMMU), as on most EC2
// instances.
func TestVMVfioWriteCombining(t *testing.T) {
	// Its first run fetches 150 MB of kernel source and builds modules
	// (minutes): make test-packer runs it (NODEPREP_VM_WC=1), make test and
	// make test-vm do not.
	if os.Getenv("NODEPREP_VM_WC") != "1" {
		t.Skip("vm: the write-combining vfio-pci build runs with NODEPREP_VM_WC=1 (make test-packer)")
	}
	bed := NewT(t)
	modDir, _ := buildVfioWC(t, bed)
	prog := filepath.Join(t.TempDir(), "vfiowc")
	if err := BuildStatic(t.Context(), "./test/vm/testdata/vfiowc", prog); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"/usr/bin/vfiowc": prog}
	for _, m := range vfioWCModules {
		files[fmt.Sprintf(vfioWCGuestDir, bed.Kernel.Release)+"/"+m] = filepath.Join(modDir, m)
	}
	for _, tc := range []struct {
		name    string
		noIOMMU bool
	}{{"viommu", false}, {"noiommu", true}} {
		t.Run(tc.name, func(t *testing.T) {
			noiommu := "0"
			if tc.noIOMMU {
				noiommu = "1"
			}
			res, err := bed.Run(t.Context(), Spec{
				Script:  "BDF=" + NICAddress(1) + " NOIOMMU=" + noiommu + "\n" + vfioWCScript,
				Files:   files,
				NICs:    []NIC{{MAC: primaryMAC, Backend: BackendUser}, {MAC: virtioMAC}},
				NoIOMMU: tc.noIOMMU,
				Modules: []string{"irqbypass", "vfio_virqfd"},
			})
			if err != nil {
				t.Fatalf("vm run: %v\nconsole:\n%s", err, res.Console)
			}
			t.Logf("kernel %s: whole run %s", res.Kernel, res.Duration.Round(time.Second))
			wc := res.Markers["wc.vfiowc"]
			t.Logf("patched vfio-pci, BAR %s:\n%s", res.Markers["bar"], wc)
			if !patLines(wc, "write-combining") || patLines(wc, "uncached-minus") || patLines(wc, "uncached") {
				t.Errorf("patched vfio-pci: PAT lines for the BAR are not all write-combining:\n%s", wc)
			}
			if !strings.Contains(res.Markers["wc.taint"], "O") {
				t.Errorf("loaded vfio_pci_core taint %q: not the out-of-tree build", res.Markers["wc.taint"])
			}
			if got, want := res.Markers["wc.noiommu_param"], map[bool]string{true: "Y", false: "N"}[tc.noIOMMU]; got != want {
				t.Errorf("vfio enable_unsafe_noiommu_mode = %q, want %s", got, want)
			}
			if tc.noIOMMU {
				return
			}
			stock := res.Markers["stock.vfiowc"]
			t.Logf("stock vfio-pci, BAR %s:\n%s", res.Markers["bar"], stock)
			if !patLines(stock, "uncached-minus") || patLines(stock, "write-combining") {
				t.Errorf("stock vfio-pci: want uncached-minus PAT lines and no write-combining:\n%s", stock)
			}
			if strings.Contains(res.Markers["stock.taint"], "O") {
				t.Errorf("stock vfio_pci_core taint %q", res.Markers["stock.taint"])
			}
		})
	}
}

// patLines reports whether vfiowc's output has PAT lines for the BAR and one
// of them names memtype. A vfiowc failure (its dump of the whole list is
// indented) has none.
func patLines(out, memtype string) bool {
	if !strings.HasPrefix(out, "vfiowc: mapped BAR") {
		return false
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "PAT: ") && strings.HasSuffix(strings.TrimSpace(l), " "+memtype) {
			return true
		}
	}
	return false
}

package boot

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// guestLink is the part of `ip -j link` the tests read.
type guestLink struct {
	IfName   string   `json:"ifname"`
	Address  string   `json:"address"`
	MTU      int      `json:"mtu"`
	AltNames []string `json:"altnames"`
}

func guestLinks(t *testing.T, b *Bed) []guestLink {
	t.Helper()
	var links []guestLink
	if err := json.Unmarshal([]byte(b.MustSSH(t, "ip -j link show")), &links); err != nil {
		t.Fatalf("ip -j link: %v", err)
	}
	return links
}

// eniInSubnet finds a Multus ENI by its subnet (each test interface has its
// own), which does not depend on how the agent tags ENIs.
func eniInSubnet(t *testing.T, b *Bed, subnet string) ec2sim.ENI {
	t.Helper()
	for _, e := range b.Sim.ENIs() {
		if e.SubnetID == subnet && e.Attachment != nil {
			return e
		}
	}
	t.Fatalf("no attached ENI in %s", subnet)
	return ec2sim.ENI{}
}

func linkByMAC(links []guestLink, mac string) (guestLink, bool) {
	for _, l := range links {
		if strings.EqualFold(l.Address, mac) {
			return l, true
		}
	}
	return guestLink{}, false
}

// checkKernelNIC: the kernel ENI n2 carries its logical name as an altname
// and its MTU, and systemd-networkd, although running with a .network file
// matching every eth*, left it unmanaged: no address, no route.
func checkKernelNIC(t *testing.T, b *Bed) {
	if st := strings.TrimSpace(b.MustSSH(t, "systemctl is-active systemd-networkd.service")); st != "active" {
		t.Fatalf("systemd-networkd is %s: the test needs it running", st)
	}
	eni := eniInSubnet(t, b, SubnetMultusA)
	l, ok := linkByMAC(guestLinks(t, b), eni.MAC)
	if !ok {
		t.Fatalf("no guest link with %s's MAC %s", eni.ID, eni.MAC)
	}
	t.Logf("n2: %s %s mtu %d altnames %v", l.IfName, l.Address, l.MTU, l.AltNames)
	if !slices.Contains(l.AltNames, "n2") {
		t.Errorf("%s: altnames %v lack n2", l.IfName, l.AltNames)
	}
	if l.MTU != 9001 {
		t.Errorf("%s: mtu %d, want 9001", l.IfName, l.MTU)
	}
	if addrs := strings.TrimSpace(b.MustSSH(t, "ip -4 -o addr show dev "+l.IfName)); addrs != "" {
		t.Errorf("%s has IPv4 addresses (networkd or DHCP configured it):\n%s", l.IfName, addrs)
	}
	if routes := strings.TrimSpace(b.MustSSH(t, "ip -4 route show table all dev "+l.IfName)); routes != "" {
		t.Errorf("%s has IPv4 routes:\n%s", l.IfName, routes)
	}
	setup := b.MustSSH(t, "networkctl list --no-pager --no-legend "+l.IfName)
	if f := strings.Fields(setup); len(f) < 5 || f[4] != "unmanaged" {
		t.Errorf("networkctl list %s: %q, want SETUP unmanaged", l.IfName, strings.TrimSpace(setup))
	}
	// The guard is real only if networkd does manage the NICs it should:
	// the primary, matched by the same .network file, has its DHCP lease.
	primary, _ := b.Sim.ENI(b.Instance.PrimaryENIID)
	p, ok := linkByMAC(guestLinks(t, b), primary.MAC)
	if !ok {
		t.Fatalf("no guest link with the primary ENI's MAC %s", primary.MAC)
	}
	if out := b.MustSSH(t, "ip -4 -o addr show dev "+p.IfName); !strings.Contains(out, "169.254.") {
		t.Errorf("primary %s has no DHCP address from networkd: %q", p.IfName, out)
	}
}

// checkDPDKBind: the DPDK ENI n3, hot-plugged behind the vIOMMU, is bound
// to vfio-pci and its IOMMU group has a VFIO device node.
func checkDPDKBind(t *testing.T, b *Bed) {
	eni := eniInSubnet(t, b, SubnetMultusB)
	addr := b.PCIAddress(t, eni.ID)
	dev := "/sys/bus/pci/devices/" + addr
	driver := strings.TrimSpace(b.MustSSH(t, "readlink -f "+dev+"/driver"))
	group := strings.TrimSpace(b.MustSSH(t, "readlink -f "+dev+"/iommu_group"))
	t.Logf("n3 %s (%s): driver %s, IOMMU group %s", addr, eni.MAC, driver, group)
	if filepath.Base(driver) != "vfio-pci" {
		t.Fatalf("%s driver is %q, want vfio-pci", addr, driver)
	}
	if _, err := b.SSH("test -c /dev/vfio/" + filepath.Base(group)); err != nil {
		t.Errorf("no /dev/vfio/%s for %s: %v", filepath.Base(group), addr, err)
	}
}

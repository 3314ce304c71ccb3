package boot

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nodeprep/nodeprep/test/ec2sim"
)

// QMPHotplug makes an ENI attachment in ec2sim hot-plug a virtio-net NIC
// carrying the ENI's MAC into the running guest, on the PCIe root port that
// stands for the attachment's device index, and a detach unplug it. The
// guest kernel then sees a PCI hot-plug, as on a Nitro instance.
//
// Each NIC gets its own QEMU user-network backend with a DHCP server, so a
// guest network manager that wrongly configured the NIC would get an address.
type QMPHotplug struct {
	QMP        *QMP
	InstanceID string
	// Ports maps a device index to the id of a pcie-root-port.
	Ports map[int]string
	// Logf receives one line per hot-plug action.
	Logf func(format string, args ...any)
	// Timeout bounds each action; the guest must acknowledge an unplug.
	Timeout time.Duration
}

// Install registers the hooks. The primary ENI (device index 0) is
// cold-plugged when QEMU starts, so it is left alone.
func (h *QMPHotplug) Install(s *ec2sim.Sim) {
	s.OnAttach(h.Attach)
	s.OnDetach(h.Detach)
}

func (h *QMPHotplug) wants(ev ec2sim.AttachEvent) bool {
	return ev.InstanceID == h.InstanceID && !(ev.NetworkCardIndex == 0 && ev.DeviceIndex == 0)
}

func (h *QMPHotplug) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), h.Timeout)
}

func deviceID(ev ec2sim.AttachEvent) string { return "nic-" + ev.ENIID }
func netdevID(ev ec2sim.AttachEvent) string { return "net-" + ev.ENIID }

// Attach plugs the ENI's NIC.
func (h *QMPHotplug) Attach(ev ec2sim.AttachEvent) error {
	if !h.wants(ev) {
		return nil
	}
	port, ok := h.Ports[ev.DeviceIndex]
	if !ok || ev.NetworkCardIndex != 0 {
		return fmt.Errorf("hot-plug %s: no PCIe root port for card %d device index %d", ev.ENIID, ev.NetworkCardIndex, ev.DeviceIndex)
	}
	ctx, cancel := h.ctx()
	defer cancel()
	if _, err := h.QMP.Execute(ctx, "netdev_add", map[string]any{
		// No IPv6: the kernel would take a SLAAC address from QEMU's router
		// advertisements on any link that is up, networkd or not.
		"type": "user", "id": netdevID(ev), "restrict": true, "ipv6": false,
		"net": fmt.Sprintf("10.254.%d.0/24", ev.DeviceIndex),
	}); err != nil {
		return fmt.Errorf("hot-plug %s: %w", ev.ENIID, err)
	}
	if _, err := h.QMP.Execute(ctx, "device_add", map[string]any{
		"driver": "virtio-net-pci", "id": deviceID(ev), "netdev": netdevID(ev),
		"mac": ev.MAC, "bus": port, "romfile": "",
		// Modern only, DMA through the vIOMMU: what vfio-pci needs for DPDK.
		"disable-legacy": "on", "iommu_platform": true,
	}); err != nil {
		return fmt.Errorf("hot-plug %s: %w", ev.ENIID, err)
	}
	h.Logf("hot-plug: device_add virtio-net-pci id=%s mac=%s bus=%s (%s device index %d)", deviceID(ev), ev.MAC, port, ev.ENIID, ev.DeviceIndex)
	return nil
}

// Detach unplugs the ENI's NIC and waits until the guest released it.
func (h *QMPHotplug) Detach(ev ec2sim.AttachEvent) error {
	if !h.wants(ev) {
		return nil
	}
	ctx, cancel := h.ctx()
	defer cancel()
	id := deviceID(ev)
	deleted := h.QMP.ExpectEvent(func(e QMPEvent) bool {
		var d struct {
			Device string `json:"device"`
		}
		return e.Event == "DEVICE_DELETED" && json.Unmarshal(e.Data, &d) == nil && d.Device == id
	})
	if _, err := h.QMP.Execute(ctx, "device_del", map[string]any{"id": id}); err != nil {
		return fmt.Errorf("hot-unplug %s: %w", ev.ENIID, err)
	}
	if _, err := deleted(ctx); err != nil {
		return fmt.Errorf("hot-unplug %s: guest did not release %s: %w", ev.ENIID, id, err)
	}
	if _, err := h.QMP.Execute(ctx, "netdev_del", map[string]any{"id": netdevID(ev)}); err != nil {
		return fmt.Errorf("hot-unplug %s: %w", ev.ENIID, err)
	}
	h.Logf("hot-plug: device_del id=%s (%s), DEVICE_DELETED received", id, ev.ENIID)
	return nil
}

// pciDevice is the part of QMP query-pci's answer the bed reads.
type pciDevice struct {
	Bus      int    `json:"bus"`
	Slot     int    `json:"slot"`
	Function int    `json:"function"`
	QdevID   string `json:"qdev_id"`
	Bridge   *struct {
		Devices []pciDevice `json:"devices"`
	} `json:"pci_bridge"`
}

// PCIAddress returns the guest PCI address (domain 0) of the NIC hot-plugged
// for an ENI, as QEMU sees it: the bus number is the one the guest
// programmed into the root port.
func PCIAddress(ctx context.Context, q *QMP, eniID string) (string, error) {
	raw, err := q.Execute(ctx, "query-pci", nil)
	if err != nil {
		return "", err
	}
	var buses []struct {
		Devices []pciDevice `json:"devices"`
	}
	if err := json.Unmarshal(raw, &buses); err != nil {
		return "", fmt.Errorf("query-pci: %w", err)
	}
	want := deviceID(ec2sim.AttachEvent{ENIID: eniID})
	var find func([]pciDevice) (string, bool)
	find = func(devs []pciDevice) (string, bool) {
		for _, d := range devs {
			if d.QdevID == want {
				return fmt.Sprintf("0000:%02x:%02x.%x", d.Bus, d.Slot, d.Function), true
			}
			if d.Bridge != nil {
				if a, ok := find(d.Bridge.Devices); ok {
					return a, true
				}
			}
		}
		return "", false
	}
	for _, b := range buses {
		if a, ok := find(b.Devices); ok {
			return a, nil
		}
	}
	return "", fmt.Errorf("query-pci: no device %s", want)
}

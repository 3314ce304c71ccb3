package logging

import "log/slog"

// Attribute keys with their own journal field. Code logs them through the
// helpers below, so the key a line carries and the field journalctl
// matches on are named in this one place.
const (
	keyStep       = "step"
	keyENIID      = "eni_id"
	keyPCIAddress = "pci_address"
	keyMAC        = "mac"
	keyInterface  = "interface"
	keyIfName     = "ifname"
)

// wellKnownFields maps those keys to their journal fields. Any other
// attribute becomes NODEPREP_<KEY>.
var wellKnownFields = map[string]string{
	keyStep:       "NODEPREP_STEP",
	keyENIID:      "ENI_ID",
	keyPCIAddress: "PCI_ADDRESS",
	keyMAC:        "MAC_ADDRESS",
	keyInterface:  "NODEPREP_INTERFACE",
	keyIfName:     "INTERFACE",
}

// Step is the engine step a line belongs to (NODEPREP_STEP).
func Step(name string) slog.Attr { return slog.String(keyStep, name) }

// ENIID is an EC2 network interface ID (ENI_ID).
func ENIID(id string) slog.Attr { return slog.String(keyENIID, id) }

// PCIAddress is a PCI function such as 0000:00:06.0 (PCI_ADDRESS).
func PCIAddress(bdf string) slog.Attr { return slog.String(keyPCIAddress, bdf) }

// MAC is a NIC's hardware address (MAC_ADDRESS).
func MAC(mac string) slog.Attr { return slog.String(keyMAC, mac) }

// Interface is the interface name from the config (NODEPREP_INTERFACE).
func Interface(name string) slog.Attr { return slog.String(keyInterface, name) }

// IfName is the kernel's name of a netdev, such as ens6 (INTERFACE).
func IfName(name string) slog.Attr { return slog.String(keyIfName, name) }

package doctor

import (
	"context"
	"strconv"
	"strings"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/kmod"
)

// Where the next boot's kernel arguments are persisted: GRUB_CMDLINE_LINUX
// (Debian, what the Packer plugin edits) and grubby's /etc/kernel/cmdline
// (AL2023).
const (
	procCmdline   = "/proc/cmdline"
	grubDefault   = "/etc/default/grub"
	kernelCmdline = "/etc/kernel/cmdline"
)

// checkKernelArgs: the arguments persisted for boot are on the running
// kernel's command line (else the node has not rebooted since they were
// set, or the bootloader did not take them), and none of the running ones
// contradicts the config.
func checkKernelArgs(_ context.Context, n *Node) []Finding {
	b, err := n.Root.ReadFile(procCmdline)
	if err != nil {
		return []Finding{warn("", "cannot read "+procCmdline+": "+err.Error(), "")}
	}
	running := strings.Fields(string(b))
	var out []Finding
	for _, src := range []string{grubDefault, kernelCmdline} {
		want, found := persistedArgs(n, src)
		if !found {
			continue
		}
		var missing []string
		for _, a := range want {
			if !hasArg(running, a) {
				missing = append(missing, a)
			}
		}
		if len(missing) > 0 {
			out = append(out, fail(src, "not on "+procCmdline+": "+strings.Join(missing, " "), "reboot (and, on Debian, update-grub) so the kernel boots with them"))
		} else {
			out = append(out, ok(src, "all "+itoa(len(want))+" persisted arguments are on "+procCmdline))
		}
	}
	if n.Config != nil {
		spec := kmod.SpecFor(n.Config.Spec)
		for _, off := range []string{"iommu=off", "intel_iommu=off", "amd_iommu=off"} {
			if spec.VFIO && spec.NoIOMMU == api.NoIOMMUOff && hasArg(running, off) {
				out = append(out, fail(off, procCmdline+" disables the IOMMU but spec.kernelModules.vfio.noiommu is off", "drop "+off+" from the kernel command line, or set noiommu: auto"))
			}
		}
	}
	if len(out) == 0 {
		out = append(out, ok("", "no persisted kernel arguments to compare; "+procCmdline+" has "+itoa(len(running))))
	}
	return out
}

// persistedArgs reads the arguments from a GRUB defaults file (the
// GRUB_CMDLINE_LINUX line) or from a plain command-line file.
func persistedArgs(n *Node, hostPath string) ([]string, bool) {
	b, err := n.Root.ReadFile(hostPath)
	if err != nil {
		return nil, false
	}
	if hostPath != grubDefault {
		return strings.Fields(string(b)), true
	}
	for _, line := range strings.Split(string(b), "\n") {
		v, found := strings.CutPrefix(strings.TrimSpace(line), "GRUB_CMDLINE_LINUX=")
		if !found {
			continue
		}
		return strings.Fields(strings.Trim(v, `"'`)), true
	}
	return nil, false
}

func itoa(i int) string { return strconv.Itoa(i) }

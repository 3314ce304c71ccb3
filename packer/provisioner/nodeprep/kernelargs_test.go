package nodeprep

import (
	"context"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"

	"github.com/nodeprep/nodeprep/internal/kernelargs"
)

const al2023Grub = `GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8 nvme_core.io_timeout=4294967295 rd.emergency=poweroff rd.shell=0 selinux=1 security=selinux quiet"
GRUB_TIMEOUT=0
GRUB_ENABLE_BLSCFG="true"
GRUB_DEFAULT=saved
`

// regenerateEntries is what a kernel update (or grub2-mkconfig) does to the
// boot entries on AL2023: their options are rebuilt from /etc/default/grub,
// whatever grubby had put in them before (amazon-eks-ami #2741).
func regenerateEntries(t *testing.T, defaultGrub string) kernelargs.Args {
	t.Helper()
	for _, l := range strings.Split(defaultGrub, "\n") {
		if v, ok := strings.CutPrefix(l, "GRUB_CMDLINE_LINUX="); ok {
			return kernelargs.Parse(strings.Trim(v, `"`))
		}
	}
	return nil
}

// TestAL2023KernelArgsSurviveEntryRegeneration: the build sets the arguments
// with grubby and in GRUB_CMDLINE_LINUX, so entries regenerated from
// /etc/default/grub still carry them. (The grubby-only build failed this:
// /etc/default/grub was never written.)
func TestAL2023KernelArgsSurviveEntryRegeneration(t *testing.T) {
	p := prepared(t, nil)
	comm := &recordingComm{
		files:   map[string]string{"/etc/os-release": al2023OSRelease, "/etc/default/grub": al2023Grub},
		respond: targetAnswers("6.1.112-122.189.amzn2023.x86_64\n"),
	}
	if err := p.Provision(context.Background(), packersdk.TestUi(t), comm, nil); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	want := p.config.kernelArgs("amd64")
	runs := comm.scripts(t)
	i := indexAfter(t, runs, 0, "cat '/tmp/packer-nodeprep/grub' >/etc/default/grub", "grubby --update-kernel=ALL --args='"+want.String()+"'")
	written, ok := comm.uploads["/tmp/packer-nodeprep/grub"]
	if !ok {
		t.Fatalf("the build wrote no /etc/default/grub; command #%d:\n%s", i, runs[i])
	}
	if missing := kernelargs.Missing(regenerateEntries(t, written), want); len(missing) > 0 {
		t.Errorf("after a regeneration of the boot entries %s are gone; /etc/default/grub:\n%s", missing, written)
	}
	if !strings.Contains(written, "nvme_core.io_timeout=4294967295") || !strings.Contains(written, "GRUB_ENABLE_BLSCFG=\"true\"") {
		t.Errorf("the image's own settings were not kept:\n%s", written)
	}

	// A second build over the result changes nothing in /etc/default/grub.
	p2 := prepared(t, nil)
	comm2 := &recordingComm{
		files:   map[string]string{"/etc/os-release": al2023OSRelease, "/etc/default/grub": written},
		respond: targetAnswers("6.1.112-122.189.amzn2023.x86_64\n"),
	}
	if err := p2.Provision(context.Background(), packersdk.TestUi(t), comm2, nil); err != nil {
		t.Fatalf("second Provision: %v", err)
	}
	if _, again := comm2.uploads["/tmp/packer-nodeprep/grub"]; again {
		t.Error("the second build rewrote /etc/default/grub")
	}
}

func TestKernelArgsByArchitecture(t *testing.T) {
	c := &Config{HugepageSize: "1G", Hugepages: 2}
	if got := c.kernelArgs("amd64").String(); got != "default_hugepagesz=1G hugepagesz=1G hugepages=2 intel_iommu=on iommu=pt" {
		t.Errorf("amd64: %s", got)
	}
	if got := c.kernelArgs("arm64").String(); strings.Contains(got, "intel_iommu") {
		t.Errorf("arm64 gets x86's IOMMU argument: %s", got)
	}
	c.IOMMUArgs = []string{}
	if got := c.kernelArgs("amd64").String(); got != "default_hugepagesz=1G hugepagesz=1G hugepages=2" {
		t.Errorf("iommu_args = [] must drop the IOMMU arguments: %s", got)
	}
}

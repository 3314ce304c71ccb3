package nodeprep

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runVfioWCBuild runs scripts/vfio_wc_lib.sh's vfio_wc_build against a fake
// kernel build tree (.config only) and source tree; every case here fails
// before make, naming the kernel.
func runVfioWCBuild(t *testing.T, config, source, patch string) (string, error) {
	t.Helper()
	lib, err := scriptFiles.ReadFile("scripts/vfio_wc_lib.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("build/.config", config)
	write("src/linux-6.1/drivers/vfio/pci/vfio_pci_core.c", source)
	write("src/linux-6.1/drivers/vfio/Makefile", "obj-m += vfio.o\n")
	p := write("wc.patch", patch)
	script := string(lib) + "\nvfio_wc_build 6.1.0-57-cloud-amd64 " + filepath.Join(dir, "build") + " " + filepath.Join(dir, "src") + " " + p + " abc 1 " + filepath.Join(dir, "out") + "\n"
	out, err := exec.Command("sh", "-euc", script).CombinedOutput()
	return string(out), err
}

const fakeCore = "static int f(void)\n{\n\tvma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);\n\treturn 0;\n}\n"

const fakeWCPatch = `--- a/drivers/vfio/pci/vfio_pci_core.c
+++ b/drivers/vfio/pci/vfio_pci_core.c
@@ -1,5 +1,5 @@
 static int f(void)
 {
-	vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
+	vma->vm_page_prot = pgprot_writecombine(vma->vm_page_prot);
 	return 0;
 }
`

func TestVfioWCBuildRefusesBuiltinVfioPCI(t *testing.T) {
	out, err := runVfioWCBuild(t, "CONFIG_VFIO_PCI=y\n", fakeCore, fakeWCPatch)
	if err == nil || !strings.Contains(out, "kernel 6.1.0-57-cloud-amd64: vfio-pci is not a module (CONFIG_VFIO_PCI=y)") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}

func TestVfioWCBuildFailsWhenThePatchDoesNotApply(t *testing.T) {
	other := strings.Replace(fakeCore, "pgprot_noncached", "pgprot_device", 1)
	out, err := runVfioWCBuild(t, "CONFIG_VFIO_PCI=m\n", other, fakeWCPatch)
	if err == nil || !strings.Contains(out, "kernel 6.1.0-57-cloud-amd64: the write-combining patch does not apply") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}

func TestVfioWCBuildFailsWhenThePatchMapsNothingWriteCombining(t *testing.T) {
	noWC := strings.Replace(fakeWCPatch, "pgprot_writecombine", "pgprot_noncached_again", 1)
	out, err := runVfioWCBuild(t, "CONFIG_VFIO_PCI=m\n", fakeCore, noWC)
	if err == nil || !strings.Contains(out, "no vfio source file maps with pgprot_writecombine") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}

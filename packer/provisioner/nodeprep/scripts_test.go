package nodeprep

import (
	"bytes"
	"io/fs"
	"os/exec"
	"path"
	"testing"
)

// scriptVariants covers every branch the templates take: both families, and a
// config with every optional part against one with none.
func scriptVariants(t *testing.T) map[string]scriptData {
	t.Helper()
	full := &Config{
		BinaryPath: "/opt/nodeprep/bin/nodeprep",
		ConfigFile: "/local/config.yaml", CNIBundleDir: "/local/cni", CNIVersion: "v1.6.2",
		IgbUioURL: "https://git.dpdk.org/dpdk-kmods/snapshot/dpdk-kmods-e721c733.tar.xz", IgbUioSHA256: "ab12", IgbUioRevision: "e721c733",
		VfioWCScript: "/local/wc.sh", VfioWCScriptSHA256: "cd34", Hugepages: 4, Isolcpus: "2-3", ExtraKernelArgs: []string{"nosmt"},
	}
	full.setDefaults()
	bare := &Config{SkipIgbUio: true, MaskUdevRules: []string{}}
	bare.setDefaults()
	fullUnits, err := shippedUnits(full.BinaryPath)
	if err != nil {
		t.Fatal(err)
	}
	bareUnits, err := shippedUnits(bare.BinaryPath)
	if err != nil {
		t.Fatal(err)
	}
	bundle := []cniFile{{Name: "bridge"}, {Name: "multus-shim"}}
	kernels := []string{"6.1.0-26-cloud-amd64", "6.12.20-1.amzn2023.x86_64"}
	out := map[string]scriptData{}
	for _, fam := range []Family{FamilyDebian, FamilyAL2023} {
		tgt := target{family: fam, kernels: kernels}
		d := newScriptData(full, tgt, bundle, fullUnits, "aa", "bb")
		d.VfioWC = []vfioWCKernel{{Kernel: kernels[0], Patch: amznDriversPatches()[2]}}
		out[string(fam)+"/full"] = d
		out[string(fam)+"/bare"] = newScriptData(bare, tgt, nil, bareUnits, "aa", "bb")
	}
	return out
}

// TestScriptsRenderToValidShell renders every embedded script for every
// variant and parses the result with bash -n and with sh -n (the targets run
// them with sh, which is dash on Debian).
func TestScriptsRenderToValidShell(t *testing.T) {
	names, err := fs.Glob(scriptFiles, "scripts/*.sh")
	if err != nil || len(names) == 0 {
		t.Fatalf("embedded scripts: %v %v", names, err)
	}
	shells := []string{"bash", "sh"}
	for _, sh := range shells {
		if _, err := exec.LookPath(sh); err != nil {
			t.Fatalf("%s is needed to check the scripts: %v", sh, err)
		}
	}
	for variant, data := range scriptVariants(t) {
		for _, name := range names {
			name = path.Base(name)
			script, err := renderScript(name, data)
			if err != nil {
				t.Errorf("%s (%s): %v", name, variant, err)
				continue
			}
			for _, sh := range shells {
				cmd := exec.Command(sh, "-n")
				cmd.Stdin = bytes.NewBufferString("set -eu\n" + script)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				if err := cmd.Run(); err != nil {
					t.Errorf("%s -n %s (%s): %v: %s\n%s", sh, name, variant, err, stderr.String(), script)
				}
			}
		}
	}
}

func TestRenderScriptRejectsUnknownScript(t *testing.T) {
	if _, err := renderScript("no_such_script.sh", scriptVariants(t)["debian/full"]); err == nil {
		t.Fatal("renderScript of a missing script returned no error")
	}
}

package nodeprep

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
)

func TestVfioWCPlanPicksAmznDriversPatchPerKernel(t *testing.T) {
	kernels := map[string]string{
		"4.14.355-275.572.amzn2.x86_64":   "linux-4.10-vfio-wc.patch",
		"5.10.228-219.884.amzn2.x86_64":   "linux-5.8-vfio-wc.patch",
		"5.15.0-1070-aws":                 "linux-5.15-vfio-wc.patch",
		"6.1.115-126.197.amzn2023.x86_64": "linux-5.15-vfio-wc.patch",
		"6.1.0-57-cloud-amd64":            "linux-5.15-vfio-wc.patch",
		"6.8.0-1021-aws":                  "linux-6.8-vfio-wc.patch",
		"6.9.12":                          "linux-6.8-vfio-wc.patch",
	}
	var names []string
	for k := range kernels {
		names = append(names, k)
	}
	plan, skipped, err := vfioWCPlan(amznDriversPatches(), names, false)
	if err != nil || len(skipped) != 0 {
		t.Fatalf("plan: %v, skipped %v", err, skipped)
	}
	for _, pk := range plan {
		if pk.Patch.Name != kernels[pk.Kernel] {
			t.Errorf("kernel %s gets %s, want %s", pk.Kernel, pk.Patch.Name, kernels[pk.Kernel])
		}
		if !strings.HasPrefix(pk.Patch.URL, "https://raw.githubusercontent.com/amzn/amzn-drivers/"+amznDriversRevision+"/userspace/dpdk/enav2-vfio-patch/patches/") {
			t.Errorf("kernel %s: patch URL %s is not pinned to the revision", pk.Kernel, pk.Patch.URL)
		}
	}
}

func TestVfioWCPlanFailsNamingUnsupportedKernelsAndRanges(t *testing.T) {
	_, _, err := vfioWCPlan(amznDriversPatches(), []string{"6.1.115-126.197.amzn2023.x86_64", "6.12.20-1.amzn2023.x86_64", "4.9.0"}, false)
	var ue *UnsupportedKernelsError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v, want *UnsupportedKernelsError", err)
	}
	if strings.Join(ue.Kernels, ",") != "6.12.20-1.amzn2023.x86_64,4.9.0" {
		t.Errorf("unsupported kernels %v", ue.Kernels)
	}
	for _, want := range []string{"6.12.20-1.amzn2023.x86_64", "4.9.0", "4.10-5.8 (linux-4.10-vfio-wc.patch)", "6.8-6.10 (linux-6.8-vfio-wc.patch)", "vfio_wc_allow_unsupported_kernels"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	plan, skipped, err := vfioWCPlan(amznDriversPatches(), []string{"6.1.115-126.197.amzn2023.x86_64", "6.12.20-1.amzn2023.x86_64"}, true)
	if err != nil || len(plan) != 1 || plan[0].Kernel != "6.1.115-126.197.amzn2023.x86_64" || strings.Join(skipped, ",") != "6.12.20-1.amzn2023.x86_64" {
		t.Errorf("allowed: plan %v skipped %v err %v", plan, skipped, err)
	}
}

func TestKernelRangeIsHalfOpen(t *testing.T) {
	r := mustKernelRange("5.15-6.8")
	for k, want := range map[string]bool{"5.14.21": false, "5.15": true, "5.15.0-1070-aws": true, "6.7.99": true, "6.8.0-1021-aws": false} {
		v, err := parseKernelVersion(k)
		if err != nil {
			t.Fatal(err)
		}
		if r.contains(v) != want {
			t.Errorf("%s in %s = %v, want %v", k, r, !want, want)
		}
	}
	for _, bad := range []string{"6.1", "6.1-", "-6.2", "6.2-6.1", "6.1-6.1", "a-b", "6.1-6.2x"} {
		if _, err := parseKernelRange(bad); err == nil {
			t.Errorf("parseKernelRange(%q) accepted", bad)
		}
	}
}

// An AL2023 image with kernels 6.1 and 6.12: amzn-drivers' patches at the
// pinned revision serve 6.1 only, so the build stops before building anything
// and names 6.12; with the opt-out it builds for 6.1 alone.
func TestProvisionAL2023VfioWCUnsupportedKernel(t *testing.T) {
	answers := targetAnswers("6.1.112-122.189.amzn2023.x86_64\n6.12.20-1.amzn2023.x86_64\n")
	p := prepared(t, func(m map[string]interface{}) {
		m["vfio_wc_amzn_drivers_revision"] = amznDriversRevision
		m["vfio_unsafe_noiommu"] = true
	})
	comm := &recordingComm{files: map[string]string{"/etc/os-release": al2023OSRelease, "/etc/default/grub": al2023Grub}, respond: answers}
	err := p.Provision(context.Background(), packersdk.TestUi(t), comm, nil)
	var se *StageError
	if !errors.As(err, &se) || se.Stage != "vfio-pci write-combining" || !strings.Contains(err.Error(), "6.12.20-1.amzn2023.x86_64") ||
		!strings.Contains(err.Error(), "5.15-6.8 (linux-5.15-vfio-wc.patch)") {
		t.Fatalf("Provision: %v, want a vfio-pci write-combining stage error naming 6.12.20 and the ranges", err)
	}
	for _, r := range comm.runs() {
		if strings.Contains(r, "vfio_wc_build") || strings.Contains(r, "curl") && strings.Contains(r, "vfio-wc") {
			t.Errorf("the build went on after finding an unsupported kernel: %s", r)
		}
	}

	p = prepared(t, func(m map[string]interface{}) {
		m["vfio_wc_amzn_drivers_revision"] = amznDriversRevision
		m["vfio_wc_allow_unsupported_kernels"] = true
		m["vfio_unsafe_noiommu"] = true
	})
	comm = &recordingComm{files: map[string]string{"/etc/os-release": al2023OSRelease, "/etc/default/grub": al2023Grub}, respond: answers}
	if err := p.Provision(context.Background(), packersdk.TestUi(t), comm, nil); err != nil {
		t.Fatalf("Provision with vfio_wc_allow_unsupported_kernels: %v", err)
	}
	runs := comm.scripts(t)
	i := indexAfter(t, runs, 0, "curl", "/"+amznDriversRevision+"/userspace/dpdk/enav2-vfio-patch/patches/linux-5.15-vfio-wc.patch")
	i = indexAfter(t, runs, i, "dnf download -q --source", `vfio_wc_build "$kv" "/lib/modules/$kv/build" "$ksrc" "$kpatch" '`+amznDriversPatches()[2].SHA256+"' 1",
		"kv='6.1.112-122.189.amzn2023.x86_64'", "depmod -a", "vfio_wc_verify")
	if strings.Contains(runs[i], "kv='6.12.20") {
		t.Errorf("built write-combining vfio-pci for the unsupported 6.12 kernel:\n%s", runs[i])
	}
	v := indexAfter(t, runs, i, "nodeprep image validation passed")
	if !strings.Contains(runs[v], "vfio_wc_verify '6.1.112-122.189.amzn2023.x86_64'") || strings.Contains(runs[v], "vfio_wc_verify '6.12.20") {
		t.Errorf("validate does not check exactly the served kernel:\n%s", runs[v])
	}
	assertShellSyntax(t, comm.runs())
}

// An x86_64 target refuses an agent built for arm64 before uploading it.
func TestProvisionRefusesAgentOfOtherArchitecture(t *testing.T) {
	self, err := os.Executable() // this test binary: an ELF of the host's architecture
	if err != nil {
		t.Fatal(err)
	}
	arch, err := elfGOARCH(self)
	if err != nil {
		t.Skipf("test binary: %v", err)
	}
	other := map[string]string{"amd64": "aarch64\n", "arm64": "x86_64\n"}[arch]
	p := prepared(t, func(m map[string]interface{}) { m["nodeprep_binary"] = self })
	answers := targetAnswers("6.1.0-26-cloud-amd64\n")
	comm := &recordingComm{
		files: map[string]string{"/etc/os-release": debianOSRelease, "/etc/default/grub": debianGrub},
		respond: func(cmd string) (string, string, int) {
			if strings.Contains(cmd, "uname -m") {
				return other, "", 0
			}
			return answers(cmd)
		},
	}
	err = p.Provision(context.Background(), packersdk.TestUi(t), comm, nil)
	var se *StageError
	if !errors.As(err, &se) || se.Stage != "upload agent" || !strings.Contains(err.Error(), "is built for "+arch) {
		t.Fatalf("Provision: %v, want an upload-agent error naming %s", err, arch)
	}
	for _, c := range comm.calls {
		if strings.HasPrefix(c, "upload: ") {
			t.Errorf("uploaded %s before refusing the binary", c)
		}
	}
}

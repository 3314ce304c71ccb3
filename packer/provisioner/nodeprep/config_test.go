package nodeprep

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixture writes the local files a config points at and returns a valid
// raw config for them.
type fixture struct {
	dir       string
	srcSHA    string
	wcSHA     string
	bundleDir string
}

func sum(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
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
	write("nodeprep", "agent binary")
	write("nodeprep.service", "[Unit]\nDescription=nodeprep\n")
	write("config.yaml", "apiVersion: nodeprep.dev/v1alpha1\n")
	write("dpdk-kmods.tar.xz", "tarball bytes")
	write("vfio-wc.sh", "#!/bin/sh\necho wc $KVER\n")
	write("cni/bridge", "bridge plugin")
	write("cni/multus-shim", "multus shim")
	sums := fmt.Sprintf("# built by test\n%s  bridge\n\n%s *multus-shim\n", sum([]byte("bridge plugin")), strings.ToUpper(sum([]byte("multus shim"))))
	write("cni/SHA256SUMS", sums)
	return &fixture{
		dir:       dir,
		srcSHA:    sum([]byte("tarball bytes")),
		wcSHA:     sum([]byte("#!/bin/sh\necho wc $KVER\n")),
		bundleDir: filepath.Join(dir, "cni"),
	}
}

func (f *fixture) path(name string) string { return filepath.Join(f.dir, name) }

func (f *fixture) raw() map[string]interface{} {
	return map[string]interface{}{
		"nodeprep_binary":  f.path("nodeprep"),
		"service_file":     f.path("nodeprep.service"),
		"config_file":      f.path("config.yaml"),
		"cni_bundle_dir":   f.bundleDir,
		"cni_version":      "v1.6.2",
		"igb_uio_source":   f.path("dpdk-kmods.tar.xz"),
		"igb_uio_sha256":   f.srcSHA,
		"igb_uio_revision": "0~20220829+git-3",
		"hugepages":        4,
		"isolcpus":         "2-3",
	}
}

func TestPrepareGoodConfigAppliesDefaults(t *testing.T) {
	f := newFixture(t)
	var p Provisioner
	if err := p.Prepare(f.raw()); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	c := p.config
	if c.BinaryPath != "/usr/bin/nodeprep" || c.StagingDir != "/tmp/packer-nodeprep" || c.ConfigPath != "/etc/nodeprep/config.yaml" {
		t.Errorf("path defaults: %q %q %q", c.BinaryPath, c.StagingDir, c.ConfigPath)
	}
	if got := strings.Join(c.Modules, ","); got != "vfio-pci,igb_uio" {
		t.Errorf("modules default = %s", got)
	}
	if got := strings.Join(c.MaskUdevRules, ","); got != "99-vpc-policy-routes.rules" {
		t.Errorf("mask_udev_rules default = %s", got)
	}
	want := "default_hugepagesz=1G hugepagesz=1G hugepages=4 intel_iommu=on iommu=pt isolcpus=2-3"
	if got := c.kernelArgs("amd64").String(); got != want {
		t.Errorf("kernel args = %q, want %q", got, want)
	}
	if len(p.bundle) != 2 || p.bundle[0].Name != "bridge" || p.bundle[1].Name != "multus-shim" {
		t.Errorf("bundle = %+v", p.bundle)
	}
}

func TestPrepareOtherGoodConfigs(t *testing.T) {
	f := newFixture(t)
	cases := map[string]func(m map[string]interface{}){
		"url source": func(m map[string]interface{}) {
			delete(m, "igb_uio_source")
			m["igb_uio_url"] = "https://git.dpdk.org/dpdk-kmods/snapshot/dpdk-kmods-e721c733cd24206399bebb8f0751b0387c4c1595.tar.xz"
		},
		"vfio only": func(m map[string]interface{}) {
			for _, k := range []string{"igb_uio_source", "igb_uio_sha256", "igb_uio_revision"} {
				delete(m, k)
			}
			m["skip_igb_uio"] = true
			m["vfio_unsafe_noiommu"] = true
		},
		"no cni, wc script, 2M pages": func(m map[string]interface{}) {
			delete(m, "cni_bundle_dir")
			delete(m, "cni_version")
			m["vfio_wc_script"] = f.path("vfio-wc.sh")
			m["vfio_wc_script_sha256"] = f.wcSHA
			m["hugepage_size"] = "2M"
			m["iommu_args"] = []string{"amd_iommu=on", "iommu=pt"}
			m["extra_kernel_args"] = []string{"nohz_full=2-3", "rcu_nocbs=2-3"}
			m["mask_udev_rules"] = []string{}
		},
		"bundle version with components": func(m map[string]interface{}) {
			m["cni_version"] = "plugins-v1.6.2_multus-v4.1.4"
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			raw := f.raw()
			mutate(raw)
			var p Provisioner
			if err := p.Prepare(raw); err != nil {
				t.Fatalf("Prepare: %v", err)
			}
		})
	}
}

func TestPrepareRejectsBadConfigNamingTheField(t *testing.T) {
	f := newFixture(t)
	badSums := filepath.Join(f.dir, "badcni")
	if err := os.MkdirAll(badSums, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(badSums, "bridge"), []byte("tampered"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(badSums, "SHA256SUMS"), []byte(sum([]byte("bridge plugin"))+"  bridge\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	evilName := filepath.Join(f.dir, "evilcni")
	if err := os.MkdirAll(evilName, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(evilName, "SHA256SUMS"), []byte(sum(nil)+"  x;reboot\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		field string
		set   map[string]interface{}
		unset []string
	}{
		{"nodeprep_binary", nil, []string{"nodeprep_binary"}},
		{"nodeprep_binary", map[string]interface{}{"nodeprep_binary": f.path("missing")}, nil},
		{"service_file", map[string]interface{}{"service_file": f.dir}, nil},
		{"config_file", map[string]interface{}{"config_file": f.path("nope.yaml")}, nil},
		{"binary_path", map[string]interface{}{"binary_path": "/usr/bin/node prep"}, nil},
		{"binary_path", map[string]interface{}{"binary_path": "usr/bin/nodeprep"}, nil},
		{"config_path", map[string]interface{}{"config_path": "/etc/../root/x"}, nil},
		{"staging_dir", map[string]interface{}{"staging_dir": "/tmp/$(reboot)"}, nil},
		{"staging_dir", map[string]interface{}{"staging_dir": "/etc"}, nil},
		{"staging_dir", map[string]interface{}{"staging_dir": "/tmp"}, nil},
		{"cni_version", map[string]interface{}{"cni_version": "../v1"}, nil},
		{"cni_version", map[string]interface{}{"cni_version": "v1;rm -rf /"}, nil},
		{"cni_version", map[string]interface{}{"cni_version": "current"}, nil},
		{"cni_version", map[string]interface{}{"cni_version": "v1.1.1+ds1"}, nil},
		{"cni_bundle_dir", map[string]interface{}{"cni_bundle_dir": f.path("nodir")}, nil},
		{"cni_bundle_dir", map[string]interface{}{"cni_bundle_dir": badSums}, nil},
		{"cni_bundle_dir", map[string]interface{}{"cni_bundle_dir": evilName}, nil},
		{"cni_bundle_dir", nil, []string{"cni_bundle_dir"}},
		{"igb_uio_source", nil, []string{"igb_uio_source"}},
		{"igb_uio_url", map[string]interface{}{"igb_uio_url": "https://example.com/x.tar.xz"}, nil},
		{"igb_uio_url", map[string]interface{}{"igb_uio_url": "http://example.com/x.tar.xz"}, []string{"igb_uio_source"}},
		{"igb_uio_url", map[string]interface{}{"igb_uio_url": "https://example.com/x'$(id)"}, []string{"igb_uio_source"}},
		{"igb_uio_sha256", map[string]interface{}{"igb_uio_sha256": "ABC"}, nil},
		{"igb_uio_source", map[string]interface{}{"igb_uio_sha256": strings.Repeat("0", 64)}, nil},
		{"igb_uio_revision", nil, []string{"igb_uio_revision"}},
		{"igb_uio_revision", map[string]interface{}{"igb_uio_revision": "main`id`"}, nil},
		{"skip_igb_uio", map[string]interface{}{"skip_igb_uio": true}, nil},
		{"vfio_wc_script_sha256", map[string]interface{}{"vfio_wc_script": f.path("vfio-wc.sh")}, nil},
		{"vfio_wc_script", map[string]interface{}{"vfio_wc_script": f.path("vfio-wc.sh"), "vfio_wc_script_sha256": f.srcSHA}, nil},
		{"vfio_wc_script", map[string]interface{}{"vfio_wc_script_sha256": f.wcSHA}, nil},
		{"vfio_wc_amzn_drivers_revision", map[string]interface{}{"vfio_wc_amzn_drivers_revision": "master"}, nil},
		{"vfio_wc_amzn_drivers_revision", map[string]interface{}{"vfio_wc_amzn_drivers_revision": amznDriversRevision, "vfio_wc_script": f.path("vfio-wc.sh"), "vfio_wc_script_sha256": f.wcSHA}, nil},
		{"vfio_wc_kernels", map[string]interface{}{"vfio_wc_patch_file": f.path("vfio-wc.sh"), "vfio_wc_patch_sha256": f.wcSHA}, nil},
		{"vfio_wc_kernels", map[string]interface{}{"vfio_wc_patch_file": f.path("vfio-wc.sh"), "vfio_wc_patch_sha256": f.wcSHA, "vfio_wc_kernels": "6.8-6.1"}, nil},
		{"vfio_wc_kernels", map[string]interface{}{"vfio_wc_patch_file": f.path("vfio-wc.sh"), "vfio_wc_patch_sha256": f.wcSHA, "vfio_wc_kernels": "6.1-6.2;id"}, nil},
		{"vfio_wc_patch_file", map[string]interface{}{"vfio_wc_patch_file": f.path("vfio-wc.sh"), "vfio_wc_patch_sha256": f.srcSHA, "vfio_wc_kernels": "6.1-6.2"}, nil},
		{"vfio_wc_patch_sha256", map[string]interface{}{"vfio_wc_patch_file": f.path("vfio-wc.sh"), "vfio_wc_kernels": "6.1-6.2"}, nil},
		{"vfio_wc_patch_revision", map[string]interface{}{"vfio_wc_patch_url": "https://example.com/wc.patch", "vfio_wc_patch_sha256": f.wcSHA, "vfio_wc_kernels": "6.1-6.2"}, nil},
		{"vfio_wc_patch_url", map[string]interface{}{"vfio_wc_patch_url": "http://example.com/wc.patch", "vfio_wc_patch_revision": "abc", "vfio_wc_patch_sha256": f.wcSHA, "vfio_wc_kernels": "6.1-6.2"}, nil},
		{"vfio_wc_kernels", map[string]interface{}{"vfio_wc_kernels": "6.1-6.2"}, nil},
		{"vfio_wc_allow_unsupported_kernels", map[string]interface{}{"vfio_wc_allow_unsupported_kernels": true}, nil},
		{"modules[1]", map[string]interface{}{"modules": []string{"vfio-pci", "igb uio"}}, nil},
		{"hugepage_size", map[string]interface{}{"hugepage_size": "1GB"}, nil},
		{"hugepages", map[string]interface{}{"hugepages": -1}, nil},
		{"iommu_args[0]", map[string]interface{}{"iommu_args": []string{"intel_iommu=on iommu=pt"}}, nil},
		{"isolcpus", map[string]interface{}{"isolcpus": "2-3;reboot"}, nil},
		{"extra_kernel_args[0]", map[string]interface{}{"extra_kernel_args": []string{"init=/bin/sh'"}}, nil},
		{"mask_udev_rules[0]", map[string]interface{}{"mask_udev_rules": []string{"../../lib/udev/rules.d/x.rules"}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.field+fmt.Sprint(tc.set), func(t *testing.T) {
			raw := f.raw()
			for _, k := range tc.unset {
				delete(raw, k)
			}
			for k, v := range tc.set {
				raw[k] = v
			}
			var p Provisioner
			err := p.Prepare(raw)
			if err == nil {
				t.Fatal("Prepare accepted a bad config")
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FieldError", err)
			}
			if !hasField(err, tc.field) {
				t.Fatalf("error %q does not name field %s", err, tc.field)
			}
		})
	}
}

// hasField reports whether any *FieldError joined in err names field.
func hasField(err error, field string) bool {
	var fe *FieldError
	if errors.As(err, &fe) && fe.Field == field {
		return true
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if hasField(e, field) {
				return true
			}
		}
	}
	return false
}

func TestPrepareRejectsUnknownOption(t *testing.T) {
	f := newFixture(t)
	raw := f.raw()
	raw["hugepage"] = 4
	var p Provisioner
	if err := p.Prepare(raw); err == nil || !strings.Contains(err.Error(), "hugepage") {
		t.Fatalf("Prepare(unknown option) = %v, want an error naming it", err)
	}
}

//go:generate packer-sdc mapstructure-to-hcl2 -type Config

package nodeprep

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/packer-plugin-sdk/common"
	packersdk "github.com/hashicorp/packer-plugin-sdk/packer"
	"github.com/hashicorp/packer-plugin-sdk/template/config"
	"github.com/hashicorp/packer-plugin-sdk/template/interpolate"

	"github.com/nodeprep/nodeprep/internal/cnibundle"
)

// Config is the `provisioner "nodeprep" {}` block. Every value that reaches a
// remote command is checked in Prepare against a strict pattern and is
// shell-quoted again when the command is built.
type Config struct {
	common.PackerConfig `mapstructure:",squash"`

	// Local path of the nodeprep agent binary to upload. Required.
	NodeprepBinary string `mapstructure:"nodeprep_binary" required:"true"`
	// Local path of the systemd unit (systemd/nodeprep.service). Required.
	ServiceFile string `mapstructure:"service_file" required:"true"`
	// Local path of the default agent config (from configs/). Optional.
	ConfigFile string `mapstructure:"config_file"`

	// Where the binary lands on the image. Default /usr/bin/nodeprep.
	BinaryPath string `mapstructure:"binary_path"`
	// Where the default config lands on the image. Default /etc/nodeprep/config.yaml.
	ConfigPath string `mapstructure:"config_path"`
	// Scratch directory on the target, owned by the SSH user and removed at
	// the end; must be under /tmp/ or /var/tmp/. Default /tmp/packer-nodeprep.
	StagingDir string `mapstructure:"staging_dir"`

	// Local directory holding the CNI plugin binaries and a SHA256SUMS file
	// listing every one of them. Optional; when set cni_version is required.
	CNIBundleDir string `mapstructure:"cni_bundle_dir"`
	// Version of the CNI bundle, e.g. v1.6.2: it names /opt/nodeprep/cni/<version>/,
	// which /opt/nodeprep/cni/current then points at.
	CNIVersion string `mapstructure:"cni_version"`

	// Local dpdk-kmods source tarball, uploaded to the target.
	IgbUioSource string `mapstructure:"igb_uio_source"`
	// https URL of a dpdk-kmods source tarball, fetched on the target
	// (e.g. a git.dpdk.org snapshot of a pinned commit).
	IgbUioURL string `mapstructure:"igb_uio_url"`
	// SHA-256 of the tarball. Required with igb_uio_source or igb_uio_url.
	IgbUioSHA256 string `mapstructure:"igb_uio_sha256"`
	// The pinned dpdk-kmods revision the tarball holds (commit or Debian
	// version); recorded on the image. Required with a source.
	IgbUioRevision string `mapstructure:"igb_uio_revision"`
	// Build no igb_uio at all (vfio-pci only images).
	SkipIgbUio bool `mapstructure:"skip_igb_uio"`
	// Load igb_uio with wc_activate=1 (write combining for ENA LLQ).
	IgbUioWCActivate bool `mapstructure:"igb_uio_wc_activate"`

	// Local script that rebuilds vfio-pci with write combining for one
	// kernel (for ENA; e.g. a vetted copy of amzn-drivers' get-vfio-with-wc.sh
	// adapted to take the kernel in $KVER). Optional.
	VfioWCScript string `mapstructure:"vfio_wc_script"`
	// SHA-256 of vfio_wc_script. Required with it.
	VfioWCScriptSHA256 string `mapstructure:"vfio_wc_script_sha256"`
	// Set vfio's enable_unsafe_noiommu_mode=1 (instances without an IOMMU).
	// With write-combining vfio-pci, vfio.ko is rebuilt with
	// CONFIG_VFIO_NOIOMMU too for kernels whose config lacks it.
	VfioNoIOMMU bool `mapstructure:"vfio_unsafe_noiommu"`

	// Build write-combining vfio-pci for every installed kernel from
	// amzn-drivers' enav2-vfio-patch at this revision: the plugin knows each
	// patch's kernel range and SHA-256 at the revisions it lists (README).
	VfioWCAmznDriversRevision string `mapstructure:"vfio_wc_amzn_drivers_revision"`
	// Or one patch (-p1 against drivers/vfio) by https URL, fetched on the
	// target, with vfio_wc_patch_revision and vfio_wc_patch_sha256...
	VfioWCPatchURL string `mapstructure:"vfio_wc_patch_url"`
	// ...or as a local file.
	VfioWCPatchFile string `mapstructure:"vfio_wc_patch_file"`
	// SHA-256 of the patch. Required with vfio_wc_patch_url or _file.
	VfioWCPatchSHA256 string `mapstructure:"vfio_wc_patch_sha256"`
	// The revision the patch URL pins (recorded on the image). Required with the URL.
	VfioWCPatchRevision string `mapstructure:"vfio_wc_patch_revision"`
	// Kernels the patch serves, MIN-MAX: from MIN up to, not including, MAX
	// (e.g. "5.15-6.8"). Required with vfio_wc_patch_url or _file.
	VfioWCKernels string `mapstructure:"vfio_wc_kernels"`
	// Keep the stock vfio-pci (no write combining) on installed kernels no
	// patch serves instead of failing the build.
	VfioWCAllowUnsupportedKernels bool `mapstructure:"vfio_wc_allow_unsupported_kernels"`

	// Modules loaded at boot via /etc/modules-load.d/nodeprep.conf.
	// Default ["vfio-pci", "igb_uio"] (igb_uio dropped with skip_igb_uio).
	Modules []string `mapstructure:"modules"`

	// Size of the boot-time hugepages: "1G" (default) or "2M".
	HugepageSize string `mapstructure:"hugepage_size"`
	// Number of hugepages reserved on the kernel command line. 0 sets only
	// the page size and leaves the count to the agent.
	Hugepages int `mapstructure:"hugepages"`
	// IOMMU kernel arguments. Default: the target architecture's, from
	// internal/kernelargs (x86_64: ["intel_iommu=on", "iommu=pt"]).
	IOMMUArgs []string `mapstructure:"iommu_args"`
	// CPU list for isolcpus=, e.g. "2-7". Optional.
	Isolcpus string `mapstructure:"isolcpus"`
	// More kernel arguments (key or key=value). Optional.
	ExtraKernelArgs []string `mapstructure:"extra_kernel_args"`

	// udev rules masked with a /dev/null link in /etc/udev/rules.d so that
	// amazon-ec2-net-utils leaves Multus ENIs alone.
	// Default ["99-vpc-policy-routes.rules"].
	MaskUdevRules []string `mapstructure:"mask_udev_rules"`

	ctx interpolate.Context
}

var (
	reRemotePath = regexp.MustCompile(`^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$`)
	reSHA256     = regexp.MustCompile(`^[0-9a-f]{64}$`)
	reRevision   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+~-]{0,79}$`)
	reURL        = regexp.MustCompile(`^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9._~/+%-]*$`)
	reModule     = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	reKernelArg  = regexp.MustCompile(`^[A-Za-z0-9_.-]+(=[A-Za-z0-9_.,:/+-]+)?$`)
	reCPUList    = regexp.MustCompile(`^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$`)
	reUdevRule   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*\.rules$`)
	reHugepageSz = regexp.MustCompile(`^(1G|2M)$`)
)

// FieldError names the config field that is wrong and why.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// cniFile is one entry of the bundle's SHA256SUMS.
type cniFile struct {
	Name   string
	SHA256 string
}

func decodeConfig(c *Config, raws ...interface{}) error {
	return config.Decode(c, &config.DecodeOpts{
		PluginType:         "packer.provisioner.nodeprep",
		Interpolate:        true,
		InterpolateContext: &c.ctx,
		InterpolateFilter:  &interpolate.RenderFilter{Exclude: []string{}},
	}, raws...)
}

func (c *Config) setDefaults() {
	if c.BinaryPath == "" {
		c.BinaryPath = defaultBinaryPath
	}
	if c.ConfigPath == "" {
		c.ConfigPath = defaultConfigPath
	}
	if c.StagingDir == "" {
		c.StagingDir = "/tmp/packer-nodeprep"
	}
	if c.HugepageSize == "" {
		c.HugepageSize = "1G"
	}
	if c.Modules == nil {
		c.Modules = []string{"vfio-pci"}
		if !c.SkipIgbUio {
			c.Modules = append(c.Modules, "igb_uio")
		}
	}
	if c.MaskUdevRules == nil {
		c.MaskUdevRules = []string{"99-vpc-policy-routes.rules"}
	}
}

// validate checks every field and returns all problems at once, each a
// *FieldError. It also returns the parsed CNI bundle listing.
func (c *Config) validate() ([]cniFile, error) {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	add(requireLocalFile("nodeprep_binary", c.NodeprepBinary))
	add(requireLocalFile("service_file", c.ServiceFile))
	if c.ConfigFile != "" {
		add(requireLocalFile("config_file", c.ConfigFile))
	}
	add(checkRemotePath("binary_path", c.BinaryPath))
	add(checkRemotePath("config_path", c.ConfigPath))
	add(checkRemotePath("staging_dir", c.StagingDir))
	// The staging dir is removed recursively, as root at the end: keep it to a
	// dedicated directory under a temp dir.
	if !strings.HasPrefix(c.StagingDir, "/tmp/") && !strings.HasPrefix(c.StagingDir, "/var/tmp/") {
		add(fieldErr("staging_dir", "%q must be a directory under /tmp/ or /var/tmp/ (it is removed when the build ends)", c.StagingDir))
	}

	var bundle []cniFile
	switch {
	case c.CNIBundleDir == "" && c.CNIVersion != "":
		add(fieldErr("cni_bundle_dir", "required when cni_version is set"))
	case c.CNIBundleDir != "":
		// The agent's bundle reader decides which versions it can pick.
		if !cnibundle.ValidVersion(c.CNIVersion) {
			add(fieldErr("cni_version", "%q must be one path component of [A-Za-z0-9._-] (at most 64, not %q), e.g. v1.6.2", c.CNIVersion, cniCurrent))
		}
		var err error
		bundle, err = readBundle(c.CNIBundleDir)
		add(err)
	}

	if c.SkipIgbUio {
		if c.IgbUioSource != "" || c.IgbUioURL != "" {
			add(fieldErr("skip_igb_uio", "set together with an igb_uio source"))
		}
		if c.IgbUioWCActivate {
			add(fieldErr("igb_uio_wc_activate", "set together with skip_igb_uio"))
		}
	} else {
		switch {
		case c.IgbUioSource == "" && c.IgbUioURL == "":
			add(fieldErr("igb_uio_source", "one of igb_uio_source or igb_uio_url is required (or skip_igb_uio = true)"))
		case c.IgbUioSource != "" && c.IgbUioURL != "":
			add(fieldErr("igb_uio_url", "set only one of igb_uio_source and igb_uio_url"))
		case c.IgbUioSource != "":
			add(requireLocalFile("igb_uio_source", c.IgbUioSource))
		default:
			if !reURL.MatchString(c.IgbUioURL) {
				add(fieldErr("igb_uio_url", "%q is not a plain https URL", c.IgbUioURL))
			}
		}
		if !reSHA256.MatchString(c.IgbUioSHA256) {
			add(fieldErr("igb_uio_sha256", "must be 64 lowercase hex digits"))
		} else if c.IgbUioSource != "" {
			add(checkLocalSHA256("igb_uio_source", c.IgbUioSource, c.IgbUioSHA256))
		}
		if !reRevision.MatchString(c.IgbUioRevision) {
			add(fieldErr("igb_uio_revision", "%q must be a pinned revision ([A-Za-z0-9._+~-], at most 80)", c.IgbUioRevision))
		}
	}

	if c.VfioWCScript != "" {
		add(requireLocalFile("vfio_wc_script", c.VfioWCScript))
		if !reSHA256.MatchString(c.VfioWCScriptSHA256) {
			add(fieldErr("vfio_wc_script_sha256", "must be 64 lowercase hex digits"))
		} else {
			add(checkLocalSHA256("vfio_wc_script", c.VfioWCScript, c.VfioWCScriptSHA256))
		}
	} else if c.VfioWCScriptSHA256 != "" {
		add(fieldErr("vfio_wc_script", "required when vfio_wc_script_sha256 is set"))
	}

	add(c.validateVfioWC())

	for i, m := range c.Modules {
		if !reModule.MatchString(m) {
			add(fieldErr(fmt.Sprintf("modules[%d]", i), "%q is not a module name", m))
		}
	}
	if !reHugepageSz.MatchString(c.HugepageSize) {
		add(fieldErr("hugepage_size", "%q must be 1G or 2M", c.HugepageSize))
	}
	if c.Hugepages < 0 || c.Hugepages > 100000 {
		add(fieldErr("hugepages", "%d out of range 0..100000", c.Hugepages))
	}
	for i, a := range c.IOMMUArgs {
		if !reKernelArg.MatchString(a) {
			add(fieldErr(fmt.Sprintf("iommu_args[%d]", i), "%q is not a kernel argument", a))
		}
	}
	if c.Isolcpus != "" && !reCPUList.MatchString(c.Isolcpus) {
		add(fieldErr("isolcpus", "%q is not a CPU list like 2-7,10", c.Isolcpus))
	}
	for i, a := range c.ExtraKernelArgs {
		if !reKernelArg.MatchString(a) {
			add(fieldErr(fmt.Sprintf("extra_kernel_args[%d]", i), "%q is not a kernel argument", a))
		}
	}
	for i, r := range c.MaskUdevRules {
		if !reUdevRule.MatchString(r) {
			add(fieldErr(fmt.Sprintf("mask_udev_rules[%d]", i), "%q is not a udev rules file name", r))
		}
	}
	return bundle, errors.Join(errs...)
}

func requireLocalFile(field, path string) error {
	if path == "" {
		return fieldErr(field, "required")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fieldErr(field, "%v", err)
	}
	if !fi.Mode().IsRegular() {
		return fieldErr(field, "%s is not a regular file", path)
	}
	return nil
}

func checkRemotePath(field, p string) error {
	if !reRemotePath.MatchString(p) || strings.Contains(p, "//") || p != filepath.Clean(p) ||
		strings.Contains("/"+p+"/", "/../") || strings.Contains("/"+p+"/", "/./") {
		return fieldErr(field, "%q must be a clean absolute path of [A-Za-z0-9._/-]", p)
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func checkLocalSHA256(field, path, want string) error {
	got, err := fileSHA256(path)
	if err != nil {
		return fieldErr(field, "%v", err)
	}
	if got != want {
		return fieldErr(field, "%s has sha256 %s, want %s", path, got, want)
	}
	return nil
}

// readBundle parses dir/SHA256SUMS (sha256sum output format) and checks every
// listed file locally, so a broken bundle fails before any instance exists.
// The target checks the same sums again after the upload.
func readBundle(dir string) ([]cniFile, error) {
	const field = "cni_bundle_dir"
	data, err := os.ReadFile(filepath.Join(dir, sumsFile))
	if err != nil {
		return nil, fieldErr(field, "%v", err)
	}
	// The agent reads the same manifest on the node; parse it by the same rules.
	sums, err := cnibundle.ParseManifest(data)
	if err != nil {
		return nil, fieldErr(field, "%s: %v", sumsFile, err)
	}
	names := make([]string, 0, len(sums))
	for name := range sums {
		names = append(names, name)
	}
	sort.Strings(names)
	files := make([]cniFile, 0, len(names))
	for _, name := range names {
		if err := checkLocalSHA256(field, filepath.Join(dir, name), sums[name]); err != nil {
			return nil, err
		}
		files = append(files, cniFile{Name: name, SHA256: sums[name]})
	}
	return files, nil
}

// Ensure the provisioner satisfies the SDK interface at compile time.
var _ packersdk.Provisioner = (*Provisioner)(nil)

// validateVfioWC checks the write-combining vfio-pci fields: one source of
// patches at most, each pinned.
func (c *Config) validateVfioWC() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	modes := 0
	for _, set := range []bool{c.VfioWCAmznDriversRevision != "", c.VfioWCPatchURL != "", c.VfioWCPatchFile != "", c.VfioWCScript != ""} {
		if set {
			modes++
		}
	}
	if modes > 1 {
		add(fieldErr("vfio_wc_amzn_drivers_revision", "set only one of vfio_wc_amzn_drivers_revision, vfio_wc_patch_url, vfio_wc_patch_file and vfio_wc_script"))
	}
	if r := c.VfioWCAmznDriversRevision; r != "" && r != amznDriversRevision {
		add(fieldErr("vfio_wc_amzn_drivers_revision", "%q is not a revision this plugin knows the patches of (%s); for another, use vfio_wc_patch_url with vfio_wc_patch_sha256 and vfio_wc_kernels", r, amznDriversRevision))
	}
	single := c.VfioWCPatchURL != "" || c.VfioWCPatchFile != ""
	if single {
		if c.VfioWCPatchURL != "" && !reURL.MatchString(c.VfioWCPatchURL) {
			add(fieldErr("vfio_wc_patch_url", "%q is not a plain https URL", c.VfioWCPatchURL))
		}
		if c.VfioWCPatchURL != "" && !reRevision.MatchString(c.VfioWCPatchRevision) {
			add(fieldErr("vfio_wc_patch_revision", "%q must be the pinned revision the URL names ([A-Za-z0-9._+~-], at most 80)", c.VfioWCPatchRevision))
		}
		if c.VfioWCPatchFile != "" {
			add(requireLocalFile("vfio_wc_patch_file", c.VfioWCPatchFile))
		}
		if !reSHA256.MatchString(c.VfioWCPatchSHA256) {
			add(fieldErr("vfio_wc_patch_sha256", "must be 64 lowercase hex digits"))
		} else if c.VfioWCPatchFile != "" {
			add(checkLocalSHA256("vfio_wc_patch_file", c.VfioWCPatchFile, c.VfioWCPatchSHA256))
		}
		if _, err := parseKernelRange(c.VfioWCKernels); err != nil {
			add(fieldErr("vfio_wc_kernels", "%v", err))
		}
	} else {
		for _, f := range [][2]string{{"vfio_wc_patch_sha256", c.VfioWCPatchSHA256}, {"vfio_wc_patch_revision", c.VfioWCPatchRevision}, {"vfio_wc_kernels", c.VfioWCKernels}} {
			if f[1] != "" {
				add(fieldErr(f[0], "set without vfio_wc_patch_url or vfio_wc_patch_file"))
			}
		}
	}
	if c.VfioWCAllowUnsupportedKernels && !c.vfioWCEnabled() {
		add(fieldErr("vfio_wc_allow_unsupported_kernels", "set without a write-combining patch"))
	}
	return errors.Join(errs...)
}

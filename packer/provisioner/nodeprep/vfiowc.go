package nodeprep

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// amzn-drivers' userspace/dpdk/enav2-vfio-patch: the write-combining patches
// for vfio-pci, one per kernel range. The ranges are those its own
// get-vfio-with-wc.sh picks at this revision (apply_wc_patch: >= 6.8, >= 5.15,
// >= 5.8, >= 4.10), except that the 6.8 patch is bounded at 6.10: from 6.10
// vfio-pci's mmap path changed and amzn-drivers' patches for 6.10+ and 6.12
// (PRs #358, #359, #370) are not merged at this revision. The checksums are
// of the files at this revision.
const amznDriversRevision = "e3092d5acc66e4d44307434551ecca6ec952412c"

const amznDriversPatchURL = "https://raw.githubusercontent.com/amzn/amzn-drivers/%s/userspace/dpdk/enav2-vfio-patch/patches/%s"

func amznDriversPatches() []wcPatch {
	mk := func(file, min, max, sum string) wcPatch {
		return wcPatch{
			Name:     file,
			URL:      fmt.Sprintf(amznDriversPatchURL, amznDriversRevision, file),
			SHA256:   sum,
			Revision: amznDriversRevision,
			Kernels:  mustKernelRange(min + "-" + max),
		}
	}
	return []wcPatch{
		mk("linux-4.10-vfio-wc.patch", "4.10", "5.8", "a60e10fdb741337331347cef924b5d9736e4c0d5e9706296cf8da0310c6d63ab"),
		mk("linux-5.8-vfio-wc.patch", "5.8", "5.15", "2b7fd0c3f7687abf215c2fb0561e829a7f429649dee29a77b27ac052e8ee20b5"),
		mk("linux-5.15-vfio-wc.patch", "5.15", "6.8", "d5e26a94dce946da24fb2df8d59e5bf1bc945f3a13892322dca4be73f5813382"),
		mk("linux-6.8-vfio-wc.patch", "6.8", "6.10", "dae00b1c885ea7c320fb80bc99b38d5ed75588638444019e7dd024f4095bed1f"),
	}
}

// wcPatch is one write-combining patch and the kernels it serves.
type wcPatch struct {
	Name     string // staged file name
	URL      string // fetched on the target; empty with File
	File     string // local file uploaded; empty with URL
	SHA256   string
	Revision string
	Kernels  kernelRange
}

// kernelVersion is the numeric head of a kernel release: 6.1.0-57-cloud-amd64
// and 6.1.115-126.197.amzn2023.x86_64 are 6.1.0 and 6.1.115.
type kernelVersion [3]int

var reKernelHead = regexp.MustCompile(`^([0-9]+)\.([0-9]+)(?:\.([0-9]+))?`)

func parseKernelVersion(s string) (kernelVersion, error) {
	m := reKernelHead.FindStringSubmatch(s)
	if m == nil {
		return kernelVersion{}, fmt.Errorf("%q does not start with <major>.<minor>", s)
	}
	var v kernelVersion
	for i := 0; i < 3; i++ {
		if m[i+1] != "" {
			v[i], _ = strconv.Atoi(m[i+1])
		}
	}
	return v, nil
}

func (v kernelVersion) less(o kernelVersion) bool {
	for i := range v {
		if v[i] != o[i] {
			return v[i] < o[i]
		}
	}
	return false
}

func (v kernelVersion) String() string {
	if v[2] == 0 {
		return fmt.Sprintf("%d.%d", v[0], v[1])
	}
	return fmt.Sprintf("%d.%d.%d", v[0], v[1], v[2])
}

// kernelRange is [Min, Max): "5.15-6.8" serves 5.15 up to, not including, 6.8.
type kernelRange struct{ Min, Max kernelVersion }

func parseKernelRange(s string) (kernelRange, error) {
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		return kernelRange{}, fmt.Errorf("%q is not MIN-MAX (e.g. 5.15-6.8: from 5.15 up to, not including, 6.8)", s)
	}
	var r kernelRange
	var err error
	if r.Min, err = parseKernelVersion(lo); err != nil || reKernelHead.FindString(lo) != lo {
		return kernelRange{}, fmt.Errorf("%q: bad lower bound %q", s, lo)
	}
	if r.Max, err = parseKernelVersion(hi); err != nil || reKernelHead.FindString(hi) != hi {
		return kernelRange{}, fmt.Errorf("%q: bad upper bound %q", s, hi)
	}
	if !r.Min.less(r.Max) {
		return kernelRange{}, fmt.Errorf("%q: empty range", s)
	}
	return r, nil
}

func mustKernelRange(s string) kernelRange {
	r, err := parseKernelRange(s)
	if err != nil {
		panic(err)
	}
	return r
}

func (r kernelRange) contains(v kernelVersion) bool { return !v.less(r.Min) && v.less(r.Max) }

func (r kernelRange) String() string { return r.Min.String() + "-" + r.Max.String() }

// vfioWCEnabled reports whether the plugin builds write-combining vfio-pci.
func (c *Config) vfioWCEnabled() bool {
	return c.VfioWCAmznDriversRevision != "" || c.VfioWCPatchURL != "" || c.VfioWCPatchFile != ""
}

// vfioWCPatches are the patches the configuration offers, each with its range.
func (c *Config) vfioWCPatches() []wcPatch {
	switch {
	case c.VfioWCAmznDriversRevision != "":
		return amznDriversPatches()
	case c.VfioWCPatchURL != "" || c.VfioWCPatchFile != "":
		r, _ := parseKernelRange(c.VfioWCKernels) // checked in validate
		return []wcPatch{{Name: "vfio-wc.patch", URL: c.VfioWCPatchURL, File: c.VfioWCPatchFile,
			SHA256: c.VfioWCPatchSHA256, Revision: c.VfioWCPatchRevision, Kernels: r}}
	}
	return nil
}

// vfioWCKernel is one installed kernel and the patch that serves it.
type vfioWCKernel struct {
	Kernel string
	Patch  wcPatch
}

// UnsupportedKernelsError names the installed kernels no configured patch serves.
type UnsupportedKernelsError struct {
	Kernels   []string
	Supported []string // the ranges, e.g. "5.15-6.8 (linux-5.15-vfio-wc.patch)"
}

func (e *UnsupportedKernelsError) Error() string {
	return fmt.Sprintf("no write-combining vfio-pci patch serves installed kernel(s) %s; the configured patches serve %s "+
		"(set vfio_wc_allow_unsupported_kernels = true to keep the stock vfio-pci, without write combining, for those kernels)",
		strings.Join(e.Kernels, ", "), strings.Join(e.Supported, ", "))
}

// vfioWCPlan picks the patch for each installed kernel. Kernels no patch
// serves fail the build, or with allow are returned as skipped.
func vfioWCPlan(patches []wcPatch, kernels []string, allow bool) (plan []vfioWCKernel, skipped []string, err error) {
	var bad []string
	for _, k := range kernels {
		v, err := parseKernelVersion(k)
		if err != nil {
			return nil, nil, err
		}
		found := false
		for _, p := range patches {
			if p.Kernels.contains(v) {
				plan = append(plan, vfioWCKernel{Kernel: k, Patch: p})
				found = true
				break
			}
		}
		if !found {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 && !allow {
		e := &UnsupportedKernelsError{Kernels: bad}
		for _, p := range patches {
			e.Supported = append(e.Supported, fmt.Sprintf("%s (%s)", p.Kernels, p.Name))
		}
		return nil, nil, e
	}
	return plan, bad, nil
}

// stageVfioWC builds write-combining vfio-pci for every installed kernel
// (or runs the user's vfio_wc_script).
func stageVfioWC(ctx context.Context, s *session) error {
	c := s.cfg
	if c.VfioWCScript != "" {
		return stageVfioWCScript(ctx, s)
	}
	if !c.vfioWCEnabled() {
		s.skip("no vfio_wc_amzn_drivers_revision, vfio_wc_patch_url or vfio_wc_patch_file")
		return nil
	}
	plan, skipped, err := vfioWCPlan(c.vfioWCPatches(), s.tgt.kernels, c.VfioWCAllowUnsupportedKernels)
	if err != nil {
		return &StageError{Stage: s.stage, Command: "choose a patch per kernel", Err: err}
	}
	for _, k := range skipped {
		s.ui.Error(fmt.Sprintf("WARNING: kernel %s keeps the stock vfio-pci without write combining (vfio_wc_allow_unsupported_kernels)", k))
	}
	s.vfioWC = plan
	// Each patch is staged once, checked where it landed.
	staged := map[string]bool{}
	for _, pk := range plan {
		p := pk.Patch
		if staged[p.Name] {
			continue
		}
		staged[p.Name] = true
		if p.File != "" {
			if err := s.uploadFile(p.File, s.staged(p.Name)); err != nil {
				return err
			}
			continue
		}
		fetch := "curl -fsSL --proto =https --retry 3 -o " + q(s.staged(p.Name)) + " " + q(p.URL) + "\n"
		if _, err := s.run(ctx, "fetch "+p.URL, fetch, false); err != nil {
			return err
		}
	}
	_, err = s.runScript(ctx, "build and install write-combining vfio-pci", "build_vfio_wc.sh", true)
	return err
}

func stageVfioWCScript(ctx context.Context, s *session) error {
	if err := s.uploadFile(s.cfg.VfioWCScript, s.staged("vfio-wc.sh")); err != nil {
		return err
	}
	_, err := s.runScript(ctx, "run vfio_wc_script", "vfio_wc.sh", true)
	return err
}

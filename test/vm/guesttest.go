package vm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// guestEnv is set by the guest's /init.
const guestEnv = "NODEPREP_VM_GUEST"

// InGuest reports whether this process runs inside a bed VM.
func InGuest() bool { return os.Getenv(guestEnv) == "1" }

// Mark reports value under key in the host's Result.Markers, like the
// shell helper `mark`. For Go code running in the guest.
func Mark(key, value string) {
	fmt.Printf("@@VM:MARK %s %s\n", key, encodeMark(value))
}

// BuildTestBinary compiles the tests of the Go package in dir (go test -c)
// as a static binary at out.
func BuildTestBinary(t testing.TB, dir, out string) {
	t.Helper()
	goBin := goTool()
	env := []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"}
	if b, err := runIn(t.Context(), dir, env, goBin, "test", "-c", "-trimpath", "-o", out, "."); err != nil {
		t.Fatalf("vm: go test -c in %s: %v\n%s", dir, err, b)
	}
	if !isStaticELF(out) {
		t.Fatalf("vm: test binary %s is dynamically linked", out)
	}
}

// RunTestInGuest runs the calling test itself inside a VM: it builds the
// current package's test binary statically, boots spec with it at
// /usr/bin/guest.test, runs spec.Script (setup, may be empty) and then
// `guest.test -test.run '^<t.Name()>$'`. In the guest InGuest() is true, so
// the test takes its in-guest branch:
//
//	func TestVMBind(t *testing.T) {
//		if vm.InGuest() {
//			// real sysfs, real vfio-pci
//			return
//		}
//		vm.NewT(t).RunTestInGuest(t, vm.Spec{NICs: ...})
//	}
//
// A failure in the guest fails t with the console attached.
func (b *Bed) RunTestInGuest(t *testing.T, spec Spec) Result {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "guest.test")
	BuildTestBinary(t, wd, bin)

	files := map[string]string{"/usr/bin/guest.test": bin}
	for k, v := range spec.Files {
		files[k] = v
	}
	spec.Files = files
	spec.Script = fmt.Sprintf("%s\ncd /tmp && /usr/bin/guest.test -test.v -test.count=1 -test.run '%s'\n",
		spec.Script, testRunPattern(t.Name()))

	res, err := b.Run(t.Context(), spec)
	if err != nil {
		t.Fatalf("vm: %s in guest: %v\nconsole:\n%s", t.Name(), err, res.Console)
	}
	// go test exits 0 when -test.run matches nothing: make that a failure.
	if !strings.Contains(res.Console, "--- PASS: "+t.Name()) {
		t.Fatalf("vm: %s did not pass in the guest\nconsole:\n%s", t.Name(), res.Console)
	}
	return res
}

// testRunPattern anchors each level of a (sub)test name for -test.run,
// which splits its pattern on '/'.
func testRunPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	// The pattern goes inside single quotes in the guest script.
	return strings.ReplaceAll(strings.Join(parts, "/"), "'", `'\''`)
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	// go test puts the toolchain's bin on PATH; this is for other callers.
	return "/usr/local/go/bin/go"
}

package hugepages

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/test/vm"
)

// TestVM1GiPages runs on a real kernel booted with one 1Gi page reserved on
// the command line, as the Packer plugin's kernel arguments do: nodeprep
// keeps that page, mounts hugetlbfs pagesize=1G with mount(2), and a second
// page, which the kernel cannot find at run time, fails with the remedy.
func TestVM1GiPages(t *testing.T) {
	if !vm.InGuest() {
		vm.NewT(t).RunTestInGuest(t, vm.Spec{MemoryMiB: 4096, Cmdline: "hugepagesz=1G hugepages=1"})
		return
	}
	root := hostfs.New("/")
	m := &Manager{Root: root, Kernel: root, Mounter: SyscallMounter{}}
	changes, err := ensure(m, []api.Hugepages{{Size: "1Gi", Count: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || !strings.Contains(changes[0].What, "mount hugetlbfs (pagesize=1G) at /dev/hugepages-1Gi") {
		t.Fatalf("changes: %+v", changes)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	vm.Mark("mountinfo", string(mi))
	if changes, err := ensure(m, []api.Hugepages{{Size: "1Gi", Count: 1}}); err != nil || len(changes) != 0 {
		t.Fatalf("second run: %d changes, %v", len(changes), err)
	}
	_, err = ensure(m, []api.Hugepages{{Size: "1Gi", Count: 2}})
	var se *ShortError
	if !errors.As(err, &se) || se.Requested != 2 || se.Got != 1 || !strings.Contains(err.Error(), "default_hugepagesz=1G hugepagesz=1G hugepages=2") {
		t.Fatalf("err = %v", err)
	}
	vm.Mark("short", err.Error())
	t.Log(err)
}

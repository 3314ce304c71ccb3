package hugepages

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/change"
)

// MountPoint is where pages of a non-default size are mounted, e.g.
// /dev/hugepages-1Gi. systemd's dev-hugepages.mount covers the default size.
func MountPoint(size string) string { return "/dev/hugepages-" + size }

// SyscallMounter mounts with mount(2).
type SyscallMounter struct{}

// Mount calls mount(2).
func (SyscallMounter) Mount(source, target, fstype string, flags uintptr, data string) error {
	return unix.Mount(source, target, fstype, flags, data)
}

// SystemdMounter asks systemd to mount (systemd-mount makes a transient
// mount unit, which PID 1 mounts). The mount lands in the host's mount
// namespace even though nodeprep's unit runs in one of its own
// (ProtectSystem=), where a mount(2) would be seen by nodeprep alone; and
// nodeprep needs neither CAP_SYS_ADMIN nor mount(2) in its syscall filter.
type SystemdMounter struct {
	// Path defaults to "systemd-mount" from PATH.
	Path string
}

// Mount runs systemd-mount, which returns once the mount unit is active.
// Without systemd as init (sd_booted: no /run/systemd/system, as in a
// container or a test bed) it falls back to mount(2).
func (m SystemdMounter) Mount(source, target, fstype string, flags uintptr, data string) error {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return SyscallMounter{}.Mount(source, target, fstype, flags, data)
	}
	if flags != 0 {
		return fmt.Errorf("systemd-mount %s: mount flags %#x cannot be passed on", target, flags)
	}
	bin := m.Path
	if bin == "" {
		bin = "systemd-mount"
	}
	args := []string{"--no-ask-password", "--type=" + fstype}
	if data != "" {
		args = append(args, "--options="+data)
	}
	out, err := exec.Command(bin, append(args, source, target)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemd-mount %s on %s: %w: %s", fstype, target, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// planMount returns the change mounting hugetlbfs for a non-default page
// size, or nil when mountinfo already shows hugetlbfs there. Without such a
// mount, DPDK cannot map pages of that size.
func (m *Manager) planMount(size string, kib int64) (*change.Change, error) {
	target := MountPoint(size)
	mounted, err := m.mounted(target)
	if err != nil {
		return nil, err
	}
	if mounted {
		return nil, nil
	}
	opt := "pagesize=" + pageSizeOption(size)
	return &change.Change{
		What: fmt.Sprintf("mount hugetlbfs (%s) at %s", opt, target),
		Apply: func(ctx context.Context) error {
			if err := m.Root.MkdirAll(target, 0o755); err != nil {
				return err
			}
			p, err := m.Root.Path(target)
			if err != nil {
				return err
			}
			if err := m.Mounter.Mount("hugetlbfs", p, "hugetlbfs", 0, opt); err != nil {
				return fmt.Errorf("mount hugetlbfs %s at %s: %w", opt, target, err)
			}
			return nil
		},
	}, nil
}

func pageSizeOption(size string) string {
	if size == api.HugepageSize1Gi {
		return "1G"
	}
	return "2M"
}

// mounted reports whether /proc/self/mountinfo lists a hugetlbfs mount at
// target. Fields (proc(5)): ID parent major:minor root mountpoint options
// [optional...] - fstype source superoptions.
func (m *Manager) mounted(target string) (bool, error) {
	b, err := m.Root.ReadFile(mountinfo)
	if err != nil {
		return false, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 1 {
			continue
		}
		if unescapeMount(f[4]) == target && g[0] == "hugetlbfs" {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

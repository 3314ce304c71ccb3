package hugepages

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
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

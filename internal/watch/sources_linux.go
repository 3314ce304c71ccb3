package watch

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/fsnotify/fsnotify"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// send delivers t unless ctx ended; a full channel drops t, since a round
// is already due and it reads the node as it is then.
func send(ctx context.Context, out chan<- Trigger, t Trigger) {
	select {
	case out <- t:
	case <-ctx.Done():
	default:
	}
}

// Links sends a trigger for every link added, removed or changed in the
// network namespace ns (nil: the current one).
func Links(ctx context.Context, ns *netns.NsHandle, out chan<- Trigger) error {
	updates := make(chan netlink.LinkUpdate, 64)
	opts := netlink.LinkSubscribeOptions{ErrorCallback: func(err error) { slog.Warn("netlink link subscription", "error", err) }}
	if ns != nil {
		opts.Namespace = ns
	}
	if err := netlink.LinkSubscribeWithOptions(updates, ctx.Done(), opts); err != nil {
		return fmt.Errorf("subscribe to netlink link events: %w", err)
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case u, ok := <-updates:
				if !ok {
					return
				}
				kind := "change"
				switch u.Header.Type {
				case unix.RTM_NEWLINK:
					kind = "new"
				case unix.RTM_DELLINK:
					kind = "del"
				}
				send(ctx, out, Trigger{Source: "netlink", Detail: kind + " " + u.Attrs().Name})
			}
		}
	}()
	return nil
}

// Files sends a trigger for every change under the given directories (real
// paths); directories that do not exist yet are skipped.
func Files(ctx context.Context, dirs []string, out chan<- Trigger) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("inotify: %w", err)
	}
	added := 0
	for _, d := range dirs {
		if err := w.Add(d); err == nil {
			added++
		}
	}
	if added == 0 {
		_ = w.Close()
		return fmt.Errorf("inotify: none of %s exists", strings.Join(dirs, ", "))
	}
	go func() {
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Events:
				if !ok {
					return
				}
				if e.Op == fsnotify.Chmod {
					continue
				}
				send(ctx, out, Trigger{Source: "inotify", Detail: e.Op.String() + " " + e.Name})
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			}
		}
	}()
	return nil
}

// Uevents sends a trigger for each kernel bind, unbind, add or remove
// uevent of a PCI device: a driver change that moves no netdev (vfio-pci
// to igb_uio) shows only there.
func Uevents(ctx context.Context, out chan<- Trigger) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return fmt.Errorf("uevent socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
		_ = unix.Close(fd)
		return fmt.Errorf("uevent bind: %w", err)
	}
	go func() {
		<-ctx.Done()
		_ = unix.Shutdown(fd, unix.SHUT_RDWR)
		_ = unix.Close(fd)
	}()
	go func() {
		buf := make([]byte, 16<<10)
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				continue
			}
			// "action@devpath\0KEY=VALUE\0..."
			head, _, _ := strings.Cut(string(buf[:n]), "\x00")
			action, devpath, _ := strings.Cut(head, "@")
			if !strings.Contains(devpath, "/pci") {
				continue
			}
			switch action {
			case "bind", "unbind", "add", "remove":
				send(ctx, out, Trigger{Source: "uevent", Detail: action + " " + devpath})
			}
		}
	}()
	return nil
}

package ipam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/nodeprep/nodeprep/internal/devinfo"
)

// Plugin runs the CNI commands.
type Plugin struct {
	// Exec runs the guard's delegate; nil is the real exec of the CNI_PATH
	// binary.
	Exec invoke.Exec
}

// Funcs are the skel callbacks.
func (p Plugin) Funcs(ctx context.Context) skel.CNIFuncs {
	return skel.CNIFuncs{
		Add: func(args *skel.CmdArgs) error {
			r, c, err := p.Add(ctx, args)
			if err != nil {
				return err
			}
			return types.PrintResult(r, c.CNIVersion)
		},
		Del:    func(args *skel.CmdArgs) error { return p.Del(ctx, args) },
		Check:  func(args *skel.CmdArgs) error { return p.Check(ctx, args) },
		Status: func(*skel.CmdArgs) error { return nil },
	}
}

// Add is CNI ADD in either role.
func (p Plugin) Add(ctx context.Context, args *skel.CmdArgs) (types.Result, *Conf, error) {
	c, err := ParseConf(args.StdinData)
	if err != nil {
		return nil, nil, err
	}
	if c.WholeENI() {
		stdin, err := c.delegateConf(args.StdinData)
		if err != nil {
			return nil, c, err
		}
		r, err := invoke.DelegateAdd(ctx, c.Delegate, stdin, p.Exec)
		return r, c, err
	}
	dev := c.Device()
	if dev == "" {
		return nil, c, &NoDeviceError{Network: c.Name, Resource: c.ResourceName}
	}
	if c.Guard() {
		stdin, err := c.delegateConf(args.StdinData)
		if err != nil {
			return nil, c, err
		}
		r, err := invoke.DelegateAdd(ctx, c.Delegate, stdin, p.Exec)
		return r, c, err
	}
	doc, raw, err := Lookup(c.IPAM.Dir, dev)
	if err != nil {
		return nil, c, err
	}
	r, err := Result(doc, c.IPAM, c.CNIVersion)
	if err != nil {
		return nil, c, &DeviceError{Device: dev, File: devinfoPath(c, dev), Err: err}
	}
	if err := PublishDeviceInfo(c.RuntimeConfig.CNIDeviceInfoFile, raw); err != nil {
		return nil, c, fmt.Errorf("device %s: device-info for Multus: %w", dev, err)
	}
	return r, c, nil
}

// Del is CNI DEL: the IPAM has nothing to release; the guard without a
// device has nothing to undo, since its ADD never ran the delegate.
func (p Plugin) Del(ctx context.Context, args *skel.CmdArgs) error {
	c, err := ParseConf(args.StdinData)
	if err != nil {
		return err
	}
	if !c.WholeENI() && (!c.Guard() || c.Device() == "") {
		return nil
	}
	if c.WholeENI() || c.WholeENIPool {
		// host-device's DEL fails when the pod holds no such link: after
		// an ADD that failed (another pod has the ENI) or a DEL that
		// already gave it back. Its teardown would then fail forever.
		held, err := p.podHolds(args.Netns, args.IfName)
		if err != nil || !held {
			return err
		}
	}
	stdin, err := c.delegateConf(args.StdinData)
	if err != nil {
		return err
	}
	return invoke.DelegateDel(ctx, c.Delegate, stdin, p.Exec)
}

// podHolds reports whether the pod's network namespace has the link
// ifName. A namespace that is gone holds nothing: the kernel moved a
// physical device out of it when it went.
func (p Plugin) podHolds(nsPath, ifName string) (bool, error) {
	if nsPath == "" {
		return false, nil
	}
	ns, err := netns.GetFromPath(nsPath)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("open the pod's network namespace %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return false, fmt.Errorf("netlink in the pod's network namespace %s: %w", nsPath, err)
	}
	defer h.Close()
	_, err = h.LinkByName(ifName)
	if errors.As(err, &netlink.LinkNotFoundError{}) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("link %s in the pod's network namespace %s: %w", ifName, nsPath, err)
	}
	return true, nil
}

// Check is CNI CHECK: the device's file must still be there.
func (p Plugin) Check(ctx context.Context, args *skel.CmdArgs) error {
	c, err := ParseConf(args.StdinData)
	if err != nil {
		return err
	}
	if c.WholeENI() {
		stdin, err := c.delegateConf(args.StdinData)
		if err != nil {
			return err
		}
		return invoke.DelegateCheck(ctx, c.Delegate, stdin, p.Exec)
	}
	dev := c.Device()
	if dev == "" {
		return &NoDeviceError{Network: c.Name, Resource: c.ResourceName}
	}
	if c.Guard() {
		stdin, err := c.delegateConf(args.StdinData)
		if err != nil {
			return err
		}
		return invoke.DelegateCheck(ctx, c.Delegate, stdin, p.Exec)
	}
	_, _, err = Lookup(c.IPAM.Dir, dev)
	return err
}

// delegateConf is the entry as the delegate gets it: the same, with the
// delegate as its type, so the delegate's own IPAM call reaches this
// plugin in the IPAM role.
func (c *Conf) delegateConf(stdin []byte) ([]byte, error) {
	if c.Delegate == "" {
		return nil, fmt.Errorf("network %s: %s as a plugin needs \"delegate\" (the plugin that moves the device, host-device)", c.Name, PluginType)
	}
	var entry map[string]any
	if err := json.Unmarshal(stdin, &entry); err != nil {
		return nil, err
	}
	entry["type"] = c.Delegate
	delete(entry, "delegate")
	return json.Marshal(entry)
}

func devinfoPath(c *Conf, dev string) string { return filepath.Join(c.IPAM.Dir, devinfo.FileName(dev)) }

// Command vfiocheck opens a vfio-pci device the way DPDK does (type1
// container, group, device fd) and prints what the kernel reports. The VM
// test bed runs it in the guest to prove a binding is usable, not only
// present in sysfs.
//
// Usage: vfiocheck <iommu-group> <pci-bdf>
package main

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// From include/uapi/linux/vfio.h: _IO(';', 100 + n).
const (
	vfioGetAPIVersion     = 0x3b64
	vfioCheckExtension    = 0x3b65
	vfioSetIOMMU          = 0x3b66
	vfioGroupGetStatus    = 0x3b67
	vfioGroupSetContainer = 0x3b68
	vfioGroupGetDeviceFD  = 0x3b6a
	vfioDeviceGetInfo     = 0x3b6b

	vfioAPIVersion       = 0
	vfioType1IOMMU       = 1
	vfioGroupFlagsViable = 1 << 0
	vfioDeviceFlagsPCI   = 1 << 1
)

type groupStatus struct{ argsz, flags uint32 }

type deviceInfo struct {
	argsz, flags, numRegions, numIRQs, capOffset, pad uint32
}

func ioctl(fd int, req, arg uintptr) (uintptr, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, arg)
	if errno != 0 {
		return r, errno
	}
	return r, nil
}

func run(group, bdf string) error {
	container, err := syscall.Open("/dev/vfio/vfio", syscall.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open /dev/vfio/vfio: %w", err)
	}
	if v, err := ioctl(container, vfioGetAPIVersion, 0); err != nil || v != vfioAPIVersion {
		return fmt.Errorf("VFIO_GET_API_VERSION = %d, %v", v, err)
	}
	if ok, err := ioctl(container, vfioCheckExtension, vfioType1IOMMU); err != nil || ok != 1 {
		return fmt.Errorf("VFIO_CHECK_EXTENSION(TYPE1) = %d, %v", ok, err)
	}
	g, err := syscall.Open("/dev/vfio/"+group, syscall.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open /dev/vfio/%s: %w", group, err)
	}
	st := groupStatus{argsz: uint32(unsafe.Sizeof(groupStatus{}))}
	if _, err := ioctl(g, vfioGroupGetStatus, uintptr(unsafe.Pointer(&st))); err != nil {
		return fmt.Errorf("VFIO_GROUP_GET_STATUS: %w", err)
	}
	if st.flags&vfioGroupFlagsViable == 0 {
		return fmt.Errorf("group %s not viable (another device of the group is bound to a host driver)", group)
	}
	c := int32(container)
	if _, err := ioctl(g, vfioGroupSetContainer, uintptr(unsafe.Pointer(&c))); err != nil {
		return fmt.Errorf("VFIO_GROUP_SET_CONTAINER: %w", err)
	}
	if _, err := ioctl(container, vfioSetIOMMU, vfioType1IOMMU); err != nil {
		return fmt.Errorf("VFIO_SET_IOMMU(TYPE1): %w", err)
	}
	name, err := syscall.BytePtrFromString(bdf)
	if err != nil {
		return err
	}
	dev, err := ioctl(g, vfioGroupGetDeviceFD, uintptr(unsafe.Pointer(name)))
	if err != nil {
		return fmt.Errorf("VFIO_GROUP_GET_DEVICE_FD(%s): %w", bdf, err)
	}
	info := deviceInfo{argsz: uint32(unsafe.Sizeof(deviceInfo{}))}
	if _, err := ioctl(int(dev), vfioDeviceGetInfo, uintptr(unsafe.Pointer(&info))); err != nil {
		return fmt.Errorf("VFIO_DEVICE_GET_INFO: %w", err)
	}
	if info.flags&vfioDeviceFlagsPCI == 0 {
		return fmt.Errorf("device %s: flags %#x lack VFIO_DEVICE_FLAGS_PCI", bdf, info.flags)
	}
	fmt.Printf("vfiocheck: ok group=%s device=%s regions=%d irqs=%d\n", group, bdf, info.numRegions, info.numIRQs)
	return nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: vfiocheck <iommu-group> <pci-bdf>")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "vfiocheck:", err)
		os.Exit(1)
	}
}

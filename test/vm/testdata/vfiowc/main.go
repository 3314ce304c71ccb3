// Command vfiowc maps a PCI BAR of a vfio-pci device the way a DPDK
// application does (container, group, device fd, VFIO_DEVICE_GET_REGION_INFO,
// mmap of the device fd at the region's offset), touches it so the kernel
// installs the mapping, and while it is mapped prints the lines of
// /sys/kernel/debug/x86/pat_memtype_list that cover the BAR: the check
// amzn-drivers' DPDK README (6.2.3) asks ENA users to make by hand.
//
// Usage: vfiowc <group-dev> <pci-bdf> <bar>
// <group-dev> is /dev/vfio/<n> (type1 IOMMU) or /dev/vfio/noiommu-<n>.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

// From include/uapi/linux/vfio.h: _IO(';', 100 + n).
const (
	vfioGetAPIVersion       = 0x3b64
	vfioSetIOMMU            = 0x3b66
	vfioGroupSetContainer   = 0x3b68
	vfioGroupGetDeviceFD    = 0x3b6a
	vfioDeviceGetRegionInfo = 0x3b6c

	vfioType1IOMMU   = 1
	vfioNoIOMMUIOMMU = 8

	vfioRegionInfoFlagMmap = 1 << 2
)

type regionInfo struct {
	argsz, flags, index, capOffset uint32
	size, offset                   uint64
}

func ioctl(fd int, req, arg uintptr) (uintptr, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, arg)
	if errno != 0 {
		return r, errno
	}
	return r, nil
}

// barStart reads the BAR's physical start from sysfs (resource, one line per BAR).
func barStart(bdf string, bar int) (uint64, error) {
	data, err := os.ReadFile("/sys/bus/pci/devices/" + bdf + "/resource")
	if err != nil {
		return 0, err
	}
	lines := strings.Split(string(data), "\n")
	if bar >= len(lines) {
		return 0, fmt.Errorf("no BAR %d in resource", bar)
	}
	f := strings.Fields(lines[bar])
	if len(f) < 1 {
		return 0, fmt.Errorf("BAR %d: empty resource line", bar)
	}
	return strconv.ParseUint(f[0], 0, 64)
}

func run(groupDev, bdf string, bar int) error {
	container, err := syscall.Open("/dev/vfio/vfio", syscall.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open /dev/vfio/vfio: %w", err)
	}
	if v, err := ioctl(container, vfioGetAPIVersion, 0); err != nil || v != 0 {
		return fmt.Errorf("VFIO_GET_API_VERSION = %d, %v", v, err)
	}
	g, err := syscall.Open(groupDev, syscall.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", groupDev, err)
	}
	c := int32(container)
	if _, err := ioctl(g, vfioGroupSetContainer, uintptr(unsafe.Pointer(&c))); err != nil {
		return fmt.Errorf("VFIO_GROUP_SET_CONTAINER: %w", err)
	}
	iommu := uintptr(vfioType1IOMMU)
	if strings.Contains(groupDev, "noiommu-") {
		iommu = vfioNoIOMMUIOMMU
	}
	if _, err := ioctl(container, vfioSetIOMMU, iommu); err != nil {
		return fmt.Errorf("VFIO_SET_IOMMU(%d): %w", iommu, err)
	}
	name, err := syscall.BytePtrFromString(bdf)
	if err != nil {
		return err
	}
	dev, err := ioctl(g, vfioGroupGetDeviceFD, uintptr(unsafe.Pointer(name)))
	if err != nil {
		return fmt.Errorf("VFIO_GROUP_GET_DEVICE_FD(%s): %w", bdf, err)
	}
	ri := regionInfo{argsz: uint32(unsafe.Sizeof(regionInfo{})), index: uint32(bar)}
	if _, err := ioctl(int(dev), vfioDeviceGetRegionInfo, uintptr(unsafe.Pointer(&ri))); err != nil {
		return fmt.Errorf("VFIO_DEVICE_GET_REGION_INFO(%d): %w", bar, err)
	}
	if ri.flags&vfioRegionInfoFlagMmap == 0 || ri.size == 0 {
		return fmt.Errorf("BAR %d: region flags %#x size %d: not mmap-able", bar, ri.flags, ri.size)
	}
	m, err := syscall.Mmap(int(dev), int64(ri.offset), int(ri.size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap BAR %d: %w", bar, err)
	}
	// The first access faults the BAR in (vfio-pci maps it from its fault handler).
	_ = *(*uint32)(unsafe.Pointer(&m[0]))
	start, err := barStart(bdf, bar)
	if err != nil {
		return err
	}
	fmt.Printf("vfiowc: mapped BAR %d start=%#x size=%#x\n", bar, start, ri.size)
	f, err := os.Open("/sys/kernel/debug/x86/pat_memtype_list")
	if err != nil {
		return err
	}
	defer f.Close()
	// Lines are "PAT: [mem 0x<start>-0x<end>] <memtype>"; print those that
	// overlap the BAR.
	end := start + ri.size
	sc := bufio.NewScanner(f)
	var all []string
	n := 0
	for sc.Scan() {
		l := sc.Text()
		all = append(all, l)
		var lo, hi uint64
		if _, err := fmt.Sscanf(l, "PAT: [mem 0x%x-0x%x]", &lo, &hi); err != nil {
			continue
		}
		if lo < end && start < hi {
			fmt.Println(l)
			n++
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if n == 0 {
		if len(all) > 60 {
			all = all[len(all)-60:]
		}
		return fmt.Errorf("no pat_memtype_list line overlaps %#x-%#x; the list (%d lines shown):\n  %s", start, end, len(all), strings.Join(all, "\n  "))
	}
	return syscall.Munmap(m)
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: vfiowc <group-dev> <pci-bdf> <bar>")
		os.Exit(2)
	}
	bar, err := strconv.Atoi(os.Args[3])
	if err != nil || bar < 0 || bar > 5 {
		fmt.Fprintln(os.Stderr, "vfiowc: bar must be 0..5")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], bar); err != nil {
		fmt.Fprintln(os.Stderr, "vfiowc:", err)
		os.Exit(1)
	}
}

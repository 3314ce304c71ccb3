package imds

// The attached interfaces as IMDS lists them. nodeprep learns its NICs from
// EC2 and netlink; the tests use this view to check what the simulator's
// IMDS serves.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// NIC is one attached network interface as IMDS describes it.
type NIC struct {
	MAC          string
	DeviceNumber int
	NetworkCard  int
	InterfaceID  string
	SubnetID     string
	LocalIPv4s   []string
	SubnetCIDR   string
}

// Interfaces lists the attached interfaces, ordered by network card and
// device number.
func (c *Client) Interfaces(ctx context.Context) ([]NIC, error) {
	ctx, cancel := context.WithTimeout(ctx, c.deadline)
	defer cancel()
	list, err := c.get(ctx, "network/interfaces/macs/")
	if err != nil {
		return nil, err
	}
	var macs []string
	for _, f := range strings.Fields(list) {
		macs = append(macs, strings.TrimSuffix(f, "/"))
	}
	nics := make([]NIC, len(macs))
	errs := make([]error, len(macs))
	var wg sync.WaitGroup
	for i, mac := range macs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nics[i], errs[i] = c.nic(ctx, mac)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	sort.Slice(nics, func(i, j int) bool {
		if nics[i].NetworkCard != nics[j].NetworkCard {
			return nics[i].NetworkCard < nics[j].NetworkCard
		}
		return nics[i].DeviceNumber < nics[j].DeviceNumber
	})
	return nics, nil
}

func (c *Client) nic(ctx context.Context, mac string) (NIC, error) {
	base := "network/interfaces/macs/" + mac + "/"
	n := NIC{MAC: mac}
	var err error
	if n.DeviceNumber, err = c.getInt(ctx, base+"device-number", false); err != nil {
		return NIC{}, err
	}
	// Absent on instance types with a single network card.
	if n.NetworkCard, err = c.getInt(ctx, base+"network-card", true); err != nil {
		return NIC{}, err
	}
	if n.InterfaceID, err = c.get(ctx, base+"interface-id"); err != nil {
		return NIC{}, err
	}
	if n.SubnetID, err = c.get(ctx, base+"subnet-id"); err != nil {
		return NIC{}, err
	}
	if n.SubnetCIDR, err = c.get(ctx, base+"subnet-ipv4-cidr-block"); err != nil {
		return NIC{}, err
	}
	// An IPv6-only interface has no local-ipv4s.
	ips, err := c.get(ctx, base+"local-ipv4s")
	if err != nil && !errors.Is(err, ErrNotFound) {
		return NIC{}, err
	}
	n.LocalIPv4s = strings.Fields(ips)
	return n, nil
}

func (c *Client) getInt(ctx context.Context, path string, zeroIfMissing bool) (int, error) {
	s, err := c.get(ctx, path)
	if err != nil {
		if zeroIfMissing && errors.Is(err, ErrNotFound) {
			return 0, nil
		}
		return 0, err
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("imds: %s: not a number: %q", path, s)
	}
	return v, nil
}

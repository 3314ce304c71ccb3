package eni

import (
	"context"
	"sync"

	"github.com/nodeprep/nodeprep/internal/api"
)

// LimitsOnce asks EC2 for the instance type's network limits once per run;
// the ENI step and the nodeadm drop-in share the answer. A failed call is
// not kept, so a later caller asks again.
type LimitsOnce struct {
	EC2          EC2
	InstanceType string
	// Known, when set, are the limits an earlier run on this instance
	// asked for (the state file keeps them): an instance's type, and so
	// its limits, cannot change while it runs, so Get does not ask EC2
	// again. Limits of another instance type are ignored.
	Known *Limits

	mu     sync.Mutex
	limits *Limits
}

// Get returns the limits, asking EC2 the first time.
func (o *LimitsOnce) Get(ctx context.Context) (*Limits, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.limits != nil {
		return o.limits, nil
	}
	if o.Known != nil && o.Known.InstanceType == o.InstanceType {
		o.limits = o.Known
		return o.limits, nil
	}
	l, err := DescribeLimits(ctx, o.EC2, o.InstanceType)
	if err != nil {
		return nil, err
	}
	o.limits = &l
	return o.limits, nil
}

// MaxPods is kubelet's maxPods less the pod slots of the managed ENIs on
// network card 0, which are no_manage but which the VPC CNI's count would
// otherwise include; 0 when the config puts no ENI there.
func (o *LimitsOnce) MaxPods(ctx context.Context, ifaces []api.Interface) (int, error) {
	reserved := 0
	for _, in := range ifaces {
		if in.Managed() && in.NetworkCardIndex != nil && *in.NetworkCardIndex == 0 {
			reserved++
		}
	}
	if reserved == 0 {
		return 0, nil
	}
	l, err := o.Get(ctx)
	if err != nil {
		return 0, err
	}
	return l.MaxPods(reserved)
}

package watch

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// DefaultPodResourcesSocket is kubelet's pod-resources endpoint.
const DefaultPodResourcesSocket = "/var/lib/kubelet/pod-resources/kubelet.sock"

// DefaultPodResourcesTimeout bounds one question to kubelet: a kubelet
// that accepts on its socket and never answers must not stall the watch,
// whose every later report waits on this round.
const DefaultPodResourcesTimeout = 5 * time.Second

// PodResources asks kubelet which pods hold a device, over its
// pod-resources gRPC API on a unix socket.
type PodResources struct {
	Socket string
	// Timeout bounds one List; zero is DefaultPodResourcesTimeout.
	Timeout time.Duration
}

// Holders lists "namespace/pod" of every pod with a container assigned
// deviceID (a PCI address, as the SR-IOV device plugin names devices) of
// resource (any resource when empty).
func (p PodResources) Holders(ctx context.Context, resource, deviceID string) ([]string, error) {
	conn, err := grpc.NewClient("unix://"+p.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("pod-resources %s: %w", p.Socket, err)
	}
	defer conn.Close()
	timeout := p.Timeout
	if timeout == 0 {
		timeout = DefaultPodResourcesTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := podresourcesv1.NewPodResourcesListerClient(conn).List(ctx, &podresourcesv1.ListPodResourcesRequest{})
	if err != nil {
		return nil, fmt.Errorf("pod-resources List on %s: %w", p.Socket, err)
	}
	var out []string
	for _, pod := range resp.GetPodResources() {
		for _, c := range pod.GetContainers() {
			for _, d := range c.GetDevices() {
				if (resource == "" || d.GetResourceName() == resource) && slices.Contains(d.GetDeviceIds(), deviceID) {
					out = append(out, pod.GetNamespace()+"/"+pod.GetName())
				}
			}
		}
	}
	return slices.Compact(out), nil
}

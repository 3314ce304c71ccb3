// Package podresources stands in for kubelet's pod-resources API
// (k8s.io/kubelet/pkg/apis/podresources/v1) where no kubelet runs: in the
// boot bed, kubelet.service is a stand-in, so nothing answers on kubelet's
// socket. It serves the generated PodResourcesLister interface with one pod
// holding every device of the SR-IOV device plugin's resource pools, read
// from the plugin's config file on the node (what nodeprep wrote), so the
// resource names and device IDs are the node's own, as kubelet would report
// them after admitting a pod that requests each pool.
package podresources

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/nodeprep/nodeprep/internal/deviceplugin"
)

// Pod names the pod that holds the devices.
type Pod struct {
	Namespace, Name, Container string
}

// Server answers List, Get and GetAllocatableResources.
type Server struct {
	podresourcesv1.UnimplementedPodResourcesListerServer
	pod     Pod
	devices []*podresourcesv1.ContainerDevices
}

// ErrNoDevices is a device plugin config with no PCI address in any pool:
// then no pod could hold a device.
var ErrNoDevices = errors.New("no pool of the device plugin config lists a PCI address")

// FromDevicePlugin is a server on which pod holds every device the device
// plugin's config lists: per pool, the resource "<resourcePrefix>/<resourceName>"
// (kubelet's name for a device plugin's resource) with the pool's PCI
// addresses as device IDs (the SR-IOV device plugin's device IDs).
func FromDevicePlugin(conf deviceplugin.ResourceConfList, pod Pod) (*Server, error) {
	s := &Server{pod: pod}
	for i, r := range conf.ResourceList {
		if r.ResourcePrefix == "" {
			return nil, fmt.Errorf("resourceList[%d] (%s): resourcePrefix is empty: the plugin's own default would apply, which this stand-in does not guess", i, r.ResourceName)
		}
		if r.Selectors == nil || len(r.Selectors.PciAddresses) == 0 {
			continue
		}
		s.devices = append(s.devices, &podresourcesv1.ContainerDevices{
			ResourceName: r.ResourcePrefix + "/" + r.ResourceName,
			DeviceIds:    slices.Clone(r.Selectors.PciAddresses),
		})
	}
	if len(s.devices) == 0 {
		return nil, ErrNoDevices
	}
	return s, nil
}

// Held is what the pod holds: resource name to device IDs.
func (s *Server) Held() map[string][]string {
	out := map[string][]string{}
	for _, d := range s.devices {
		out[d.ResourceName] = slices.Clone(d.DeviceIds)
	}
	return out
}

func (s *Server) podResources() *podresourcesv1.PodResources {
	return &podresourcesv1.PodResources{
		Name: s.pod.Name, Namespace: s.pod.Namespace,
		Containers: []*podresourcesv1.ContainerResources{{Name: s.pod.Container, Devices: s.devices}},
	}
}

// List is every pod's resources: the one pod.
func (s *Server) List(context.Context, *podresourcesv1.ListPodResourcesRequest) (*podresourcesv1.ListPodResourcesResponse, error) {
	return &podresourcesv1.ListPodResourcesResponse{PodResources: []*podresourcesv1.PodResources{s.podResources()}}, nil
}

// Get is one pod's resources; another pod is NotFound, as kubelet answers.
func (s *Server) Get(_ context.Context, r *podresourcesv1.GetPodResourcesRequest) (*podresourcesv1.GetPodResourcesResponse, error) {
	if r.GetPodName() != s.pod.Name || r.GetPodNamespace() != s.pod.Namespace {
		return nil, status.Errorf(codes.NotFound, "pod %s not found in namespace %s", r.GetPodName(), r.GetPodNamespace())
	}
	return &podresourcesv1.GetPodResourcesResponse{PodResources: s.podResources()}, nil
}

// GetAllocatableResources is every device of the pools: all of them
// allocatable, all of them held.
func (s *Server) GetAllocatableResources(context.Context, *podresourcesv1.AllocatableResourcesRequest) (*podresourcesv1.AllocatableResourcesResponse, error) {
	return &podresourcesv1.AllocatableResourcesResponse{Devices: s.devices}, nil
}

// Listen makes the unix socket at path (its directory too, as kubelet does
// under /var/lib/kubelet), replacing a stale socket of an earlier run.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("pod-resources socket directory: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("stale pod-resources socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("pod-resources socket: %w", err)
	}
	return l, nil
}

// Serve serves s on l until ctx ends.
func Serve(ctx context.Context, l net.Listener, s *Server) error {
	g := grpc.NewServer()
	podresourcesv1.RegisterPodResourcesListerServer(g, s)
	go func() {
		<-ctx.Done()
		g.Stop()
	}()
	if err := g.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("pod-resources: %w", err)
	}
	return nil
}

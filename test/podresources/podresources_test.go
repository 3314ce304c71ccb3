package podresources

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/nodeprep/nodeprep/internal/deviceplugin"
	"github.com/nodeprep/nodeprep/internal/watch"
)

// serve runs srv on a socket under a temporary directory that does not
// exist yet (Listen makes it, as for /var/lib/kubelet/pod-resources).
func serve(t *testing.T, srv *Server) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "pod-resources", "kubelet.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, srv) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return sock
}

// fromRendered is a server built from the device plugin config nodeprep
// renders for these resources, read back as the stand-in reads the file.
func fromRendered(t *testing.T, prefix string, rs []deviceplugin.Resource) *Server {
	t.Helper()
	data, err := deviceplugin.Render(prefix, rs)
	if err != nil {
		t.Fatal(err)
	}
	var conf deviceplugin.ResourceConfList
	if err := json.Unmarshal(data, &conf); err != nil {
		t.Fatal(err)
	}
	srv, err := FromDevicePlugin(conf, Pod{Namespace: "default", Name: "dpdk-app", Container: "app"})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// The watch's own client is the judge: it finds the pod by the resource
// name it derives from nodeprep's config and the device's PCI address.
func TestWatchFindsThePodHoldingARenderedDevice(t *testing.T) {
	srv := fromRendered(t, "amazon.com", []deviceplugin.Resource{
		{Name: "dpdk_b", Devices: []deviceplugin.Device{{Address: "0000:02:00.0", Driver: "vfio-pci"}}},
		{Name: "dpdk_c", Devices: []deviceplugin.Device{{Address: "0000:03:00.0", Driver: "vfio-pci"}}},
	})
	sock := serve(t, srv)
	client := watch.PodResources{Socket: sock}
	for _, c := range []struct {
		resource, device string
		want             []string
	}{
		{"amazon.com/dpdk_b", "0000:02:00.0", []string{"default/dpdk-app"}},
		{"amazon.com/dpdk_c", "0000:03:00.0", []string{"default/dpdk-app"}},
		{"", "0000:03:00.0", []string{"default/dpdk-app"}},
		// Another pool's device, or another prefix: no holder.
		{"amazon.com/dpdk_b", "0000:03:00.0", nil},
		{"intel.com/dpdk_b", "0000:02:00.0", nil},
	} {
		got, err := client.Holders(context.Background(), c.resource, c.device)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("Holders(%q, %q) = %v, want %v", c.resource, c.device, got, c.want)
		}
	}
}

func TestGetAndAllocatable(t *testing.T) {
	sock := serve(t, fromRendered(t, "amazon.com", []deviceplugin.Resource{{Name: "dpdk", Devices: []deviceplugin.Device{{Address: "0000:02:00.0"}}}}))
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := podresourcesv1.NewPodResourcesListerClient(conn)
	ctx := context.Background()
	got, err := c.Get(ctx, &podresourcesv1.GetPodResourcesRequest{PodName: "dpdk-app", PodNamespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	if d := got.GetPodResources().GetContainers()[0].GetDevices(); len(d) != 1 || d[0].GetResourceName() != "amazon.com/dpdk" || !slices.Equal(d[0].GetDeviceIds(), []string{"0000:02:00.0"}) {
		t.Errorf("Get: %v", got)
	}
	if _, err := c.Get(ctx, &podresourcesv1.GetPodResourcesRequest{PodName: "other", PodNamespace: "default"}); status.Code(err) != codes.NotFound {
		t.Errorf("Get of another pod: %v, want NotFound", err)
	}
	alloc, err := c.GetAllocatableResources(ctx, &podresourcesv1.AllocatableResourcesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(alloc.GetDevices()) != 1 || alloc.GetDevices()[0].GetResourceName() != "amazon.com/dpdk" {
		t.Errorf("GetAllocatableResources: %v", alloc)
	}
}

func TestAConfigWithoutDevicesIsRefused(t *testing.T) {
	_, err := FromDevicePlugin(deviceplugin.ResourceConfList{ResourceList: []deviceplugin.ResourceConfig{{ResourcePrefix: "amazon.com", ResourceName: "dpdk"}}}, Pod{})
	if !errors.Is(err, ErrNoDevices) {
		t.Errorf("got %v, want ErrNoDevices", err)
	}
	if _, err := FromDevicePlugin(deviceplugin.ResourceConfList{ResourceList: []deviceplugin.ResourceConfig{{ResourceName: "dpdk"}}}, Pod{}); err == nil {
		t.Error("a pool without resourcePrefix was accepted")
	}
}

// Command podresources serves kubelet's pod-resources API on kubelet's
// socket with one pod holding every device of the node's SR-IOV device
// plugin config (package podresources). The boot bed runs it in the guest
// as a Type=notify transient unit: READY=1 is sent once the socket listens.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/deviceplugin"
	"github.com/nodeprep/nodeprep/internal/notify"
	"github.com/nodeprep/nodeprep/internal/watch"
	"github.com/nodeprep/nodeprep/test/podresources"
)

func main() {
	config := flag.String("device-plugin-config", api.DefaultDevicePluginConfig, "the SR-IOV device plugin's config file, as nodeprep wrote it")
	socket := flag.String("socket", watch.DefaultPodResourcesSocket, "where kubelet serves the pod-resources API")
	var pod podresources.Pod
	flag.StringVar(&pod.Namespace, "namespace", "default", "the holding pod's namespace")
	flag.StringVar(&pod.Name, "pod", "dpdk-app", "the holding pod's name")
	flag.StringVar(&pod.Container, "container", "app", "the holding container's name")
	flag.Parse()
	if err := run(*config, *socket, pod); err != nil {
		fmt.Fprintln(os.Stderr, "podresources:", err)
		os.Exit(1)
	}
}

func run(config, socket string, pod podresources.Pod) error {
	data, err := os.ReadFile(config)
	if err != nil {
		return err
	}
	var conf deviceplugin.ResourceConfList
	if err := json.Unmarshal(data, &conf); err != nil {
		return fmt.Errorf("%s: %w", config, err)
	}
	srv, err := podresources.FromDevicePlugin(conf, pod)
	if err != nil {
		return fmt.Errorf("%s: %w", config, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	l, err := podresources.Listen(socket)
	if err != nil {
		return err
	}
	defer os.Remove(socket)
	fmt.Fprintf(os.Stderr, "podresources: %s/%s holds %v (from %s), serving on %s\n", pod.Namespace, pod.Name, srv.Held(), config, socket)
	if err := (notify.Systemd{}).Ready(); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return podresources.Serve(ctx, l, srv)
}

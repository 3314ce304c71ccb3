package ipam

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"
)

// recordingExec stands in for the delegate binary and records its runs.
type recordingExec struct{ runs []string }

func (e *recordingExec) ExecPlugin(_ context.Context, path string, _ []byte, environ []string) ([]byte, error) {
	cmd := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "CNI_COMMAND="); ok {
			cmd = v
		}
	}
	e.runs = append(e.runs, filepath.Base(path)+" "+cmd)
	return []byte(`{"cniVersion":"1.0.0"}`), nil
}

func (e *recordingExec) FindInPath(plugin string, _ []string) (string, error) {
	return "/fake/" + plugin, nil
}

func (e *recordingExec) Decode(b []byte) (version.PluginInfo, error) {
	return (&version.PluginDecoder{}).Decode(b)
}

// A whole ENI's guard runs host-device on DEL only while the pod holds the
// link: a pod whose ADD failed (another pod has the ENI), a repeated DEL
// and a pod whose namespace is gone all succeed without it, since
// host-device v1.10.0's DEL fails there and the teardown would never end.
func TestWholeENIGuardDeletesOnlyWhatThePodHolds(t *testing.T) {
	stdin := entry(t, PluginType, "/unused", map[string]any{"delegate": "host-device", "hwaddr": "0a:1b:2c:3d:4e:5f",
		"ipam": map[string]any{"type": "static", "addresses": []any{map[string]any{"address": "10.0.17.9/20"}}}})
	for _, c := range []struct {
		name, netns, ifName string
		want                []string
	}{
		{"held", "/proc/self/ns/net", "lo", []string{"host-device DEL"}},
		{"not held", "/proc/self/ns/net", "nodeprepnone0", nil},
		{"namespace gone", filepath.Join(t.TempDir(), "gone"), "net1", nil},
		{"no namespace", "", "net1", nil},
	} {
		ex := &recordingExec{}
		err := Plugin{Exec: ex}.Del(context.Background(), &skel.CmdArgs{ContainerID: "c", Netns: c.netns, IfName: c.ifName, StdinData: stdin})
		if err != nil || !slices.Equal(ex.runs, c.want) {
			t.Errorf("%s: DEL %v, delegate runs %v; want nil and %v", c.name, err, ex.runs, c.want)
		}
	}
	ex := &recordingExec{}
	if _, _, err := (Plugin{Exec: ex}).Add(context.Background(), &skel.CmdArgs{ContainerID: "c", Netns: "/proc/self/ns/net", IfName: "net1", StdinData: stdin}); err != nil || !slices.Equal(ex.runs, []string{"host-device ADD"}) {
		t.Errorf("ADD %v, delegate runs %v; want host-device ADD with no device plugin", err, ex.runs)
	}
}

// A whole-ENI pool's guard: without an allocated device ADD fails naming
// the resource and DEL succeeds; with one, ADD runs host-device and DEL
// runs it only while the pod holds the link (a repeated DEL, a gone
// namespace), as host-device v1.10.0's DEL fails without it.
func TestWholeENIPoolGuard(t *testing.T) {
	const resource = "amazon.com/upf_pool"
	conf := map[string]any{"delegate": "host-device", "resourceName": resource, "wholeENIPool": true}
	none := entry(t, PluginType, "/unused", conf)
	ex := &recordingExec{}
	_, _, err := (Plugin{Exec: ex}).Add(context.Background(), &skel.CmdArgs{ContainerID: "c", Netns: "/proc/self/ns/net", IfName: "net1", StdinData: none})
	if !errors.Is(err, ErrNoDevice) || !strings.Contains(err.Error(), "must request resource "+resource) || len(ex.runs) != 0 {
		t.Errorf("ADD without a device: %v, delegate runs %v; want ErrNoDevice naming %s", err, ex.runs, resource)
	}
	if err := (Plugin{Exec: ex}).Del(context.Background(), &skel.CmdArgs{ContainerID: "c", Netns: "/proc/self/ns/net", IfName: "lo", StdinData: none}); err != nil || len(ex.runs) != 0 {
		t.Errorf("DEL without a device: %v, delegate runs %v; want nil and none", err, ex.runs)
	}
	conf["pciBusID"], conf["deviceID"] = pciA, pciA
	withDevice := entry(t, PluginType, "/unused", conf)
	if _, _, err := (Plugin{Exec: ex}).Add(context.Background(), &skel.CmdArgs{ContainerID: "c", Netns: "/proc/self/ns/net", IfName: "net1", StdinData: withDevice}); err != nil || !slices.Equal(ex.runs, []string{"host-device ADD"}) {
		t.Errorf("ADD with a device: %v, delegate runs %v", err, ex.runs)
	}
	for _, c := range []struct {
		name, netns, ifName string
		want                []string
	}{
		{"held", "/proc/self/ns/net", "lo", []string{"host-device DEL"}},
		{"not held", "/proc/self/ns/net", "nodeprepnone0", nil},
		{"namespace gone", filepath.Join(t.TempDir(), "gone"), "net1", nil},
	} {
		ex := &recordingExec{}
		err := Plugin{Exec: ex}.Del(context.Background(), &skel.CmdArgs{ContainerID: "c", Netns: c.netns, IfName: c.ifName, StdinData: withDevice})
		if err != nil || !slices.Equal(ex.runs, c.want) {
			t.Errorf("%s: DEL %v, delegate runs %v; want nil and %v", c.name, err, ex.runs, c.want)
		}
	}
}

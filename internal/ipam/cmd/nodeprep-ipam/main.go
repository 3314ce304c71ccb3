// Command nodeprep-ipam is nodeprep's CNI plugin for whole-ENI attachments;
// see package ipam. It is shipped in the CNI bundle.
package main

import (
	"context"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/nodeprep/nodeprep/internal/ipam"
)

func main() {
	skel.PluginMainFuncs(ipam.Plugin{}.Funcs(context.Background()), version.All, "nodeprep-ipam: the EC2 addresses of the ENI behind an allocated device")
}

// Command packer-plugin-nodeprep is the Packer plugin that bakes nodeprep into
// an EKS worker AMI. Its only component is the provisioner, registered under
// the plugin's default name so templates write `provisioner "nodeprep" {}`.
package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/packer-plugin-sdk/plugin"

	"github.com/nodeprep/nodeprep/packer/provisioner/nodeprep"
	"github.com/nodeprep/nodeprep/packer/version"
)

func main() {
	pps := plugin.NewSet()
	pps.RegisterProvisioner(plugin.DEFAULT_NAME, new(nodeprep.Provisioner))
	pps.SetVersion(version.Plugin())
	if err := pps.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err.Error())
		os.Exit(1)
	}
}

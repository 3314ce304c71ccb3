// Package version carries the plugin version. Release builds set Version and
// VersionPrerelease with -ldflags "-X .../packer/version.Version=1.2.3
// -X .../packer/version.VersionPrerelease=", as packer-plugin-scaffolding does.
package version

import "github.com/hashicorp/packer-plugin-sdk/version"

// These are variables only so the linker can set them (-X needs a var).
var (
	Version           = "0.1.0"
	VersionPrerelease = "dev"
	VersionMetadata   = ""
)

// Plugin returns the version reported by `describe` and `packer plugins installed`.
func Plugin() *version.PluginVersion {
	return version.NewPluginVersion(Version, VersionPrerelease, VersionMetadata)
}

package nodeprep

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/nodeprep/nodeprep/systemd"
)

// unitFile is a file the image gets under /etc/systemd/system from the agent
// module the plugin was built with, not from the build's config.
type unitFile struct {
	// Name is the file's name, in the staging dir as on the image.
	Name    string
	Path    string
	Content []byte
	SHA256  string
}

func newUnitFile(name, path string, content []byte) unitFile {
	sum := sha256.Sum256(content)
	return unitFile{Name: name, Path: path, Content: content, SHA256: hex.EncodeToString(sum[:])}
}

// refreshUnits are the units that run nodeprep again when the VPC CNI's
// conflist appears after boot. Their service runs the unit's binary path; for
// another binary_path a drop-in points it there, as an admin would.
func refreshUnits(binaryPath string) ([]unitFile, error) {
	pathUnit, err := systemd.Unit(refreshPathName)
	if err != nil {
		return nil, err
	}
	service, err := systemd.Unit(refreshServiceName)
	if err != nil {
		return nil, err
	}
	units := []unitFile{
		newUnitFile(refreshPathName, refreshPath, pathUnit),
		newUnitFile(refreshServiceName, refreshServicePath, service),
	}
	if binaryPath == defaultBinaryPath {
		return units, nil
	}
	dropIn, err := execStartDropIn(service, binaryPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", refreshServiceName, err)
	}
	return append(units, newUnitFile(refreshDropInName, refreshDropIn, dropIn)), nil
}

// execStartDropIn replaces the unit's ExecStart with the same command run from
// binaryPath (an empty ExecStart= first, as systemd requires to replace one).
func execStartDropIn(unit []byte, binaryPath string) ([]byte, error) {
	for _, line := range strings.Split(string(unit), "\n") {
		if args, ok := strings.CutPrefix(strings.TrimSpace(line), "ExecStart="+defaultBinaryPath); ok {
			return []byte("# Written by packer-plugin-nodeprep for binary_path.\n[Service]\nExecStart=\nExecStart=" + binaryPath + args + "\n"), nil
		}
	}
	return nil, fmt.Errorf("no ExecStart=%s to point at another binary", defaultBinaryPath)
}

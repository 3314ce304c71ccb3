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

// shippedUnits are the units besides the configured agent service: the
// ones that run nodeprep again when the VPC CNI's conflist appears after
// boot, and the drift watcher. Their services run the unit's binary path;
// for another binary_path a drop-in points each there, as an admin would.
func shippedUnits(binaryPath string) ([]unitFile, error) {
	pathUnit, err := systemd.Unit(refreshPathName)
	if err != nil {
		return nil, err
	}
	units := []unitFile{newUnitFile(refreshPathName, refreshPath, pathUnit)}
	// Each drop-in has its own name in the staging dir; on the image both are
	// nodeprep-binary-path.conf, each in its unit's .d directory.
	for _, svc := range []struct{ name, path, staged, dropIn string }{
		{refreshServiceName, refreshServicePath, refreshDropInName, refreshDropIn},
		{watchServiceName, watchServicePath, "nodeprep-watch-" + refreshDropInName, watchDropIn},
	} {
		service, err := systemd.Unit(svc.name)
		if err != nil {
			return nil, err
		}
		units = append(units, newUnitFile(svc.name, svc.path, service))
		if binaryPath == defaultBinaryPath {
			continue
		}
		dropIn, err := execStartDropIn(service, binaryPath)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", svc.name, err)
		}
		units = append(units, newUnitFile(svc.staged, svc.dropIn, dropIn))
	}
	return units, nil
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

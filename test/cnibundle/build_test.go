// Package cnibundle_test checks how test/cnibundle/build.sh drives the Go
// toolchain, with a stand-in `go` on PATH, so it runs in a second without
// the network: one `go build` per module, the two modules at once, replace
// directives carried over, and progress on stderr.
package cnibundle_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// fakeGo answers `go mod download -json M@V` with a go.mod holding a replace
// directive, and `go build -v -o DIR/ PKG...` by creating each binary. It logs
// every build with its start and end time; a build takes a second, long
// enough to see whether two overlap.
const fakeGo = `#!/usr/bin/env bash
set -eu
log=$FAKE_GO_LOG
case "$1 $2" in
"mod download")
	spec=${@: -1}
	mod=$FAKE_GO_DIR/$(echo "$spec" | tr '/@' '__').mod
	printf 'module %s\n\nreplace github.com/gogo/protobuf => github.com/gogo/protobuf v1.3.2\n' "${spec%@*}" >"$mod"
	printf '{\n\t"Path": "%s",\n\t"GoMod": "%s",\n\t"Dir": "/x"\n}\n' "${spec%@*}" "$mod"
	;;
*)
	[[ $1 == build ]] || { echo "fake go: unexpected $*" >&2; exit 2; }
	start=$(date +%s.%N)
	out= pkgs=()
	while (($#)); do
		case $1 in
		-o) out=$2; shift 2 ;;
		-ldflags) shift 2 ;;
		build | -v | -trimpath | -buildvcs=false) shift ;;
		*) pkgs+=("$1"); shift ;;
		esac
	done
	for p in "${pkgs[@]}"; do
		echo "$p" >&2
		echo binary >"$out$(basename "$p")"
	done
	sleep 1
	echo "build $start $(date +%s.%N) $(pwd) ${pkgs[*]}" >>"$log"
	;;
esac
`

type build struct {
	start, end float64
	dir        string
	pkgs       []string
}

func TestBuildScriptOneBuildPerModuleInParallel(t *testing.T) {
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "go"), []byte(fakeGo), 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(tmp, "builds.log")
	cmd := exec.Command("bash", "build.sh")
	cmd.Env = append(os.Environ(),
		"PATH="+bin+":"+os.Getenv("PATH"),
		"NODEPREP_CACHE="+filepath.Join(tmp, "cache"),
		"FAKE_GO_LOG="+logPath,
		"FAKE_GO_DIR="+tmp,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build.sh: %v\n%s", err, stderr.String())
	}
	out := strings.TrimSpace(stdout.String())
	sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		names = append(names, strings.Fields(line)[1])
	}
	if got := strings.Join(names, " "); got != "host-device host-local ipvlan macvlan multus nodeprep-ipam static whereabouts" {
		t.Errorf("bundle holds %s", got)
	}

	logData, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var builds []build
	for _, line := range strings.Split(strings.TrimSpace(string(logData)), "\n") {
		f := strings.Fields(line)
		start, _ := strconv.ParseFloat(f[1], 64)
		end, _ := strconv.ParseFloat(f[2], 64)
		builds = append(builds, build{start: start, end: end, dir: f[3], pkgs: f[4:]})
	}
	if len(builds) != 3 {
		t.Fatalf("%d go build runs, want 3 (one per upstream module, and nodeprep-ipam):\n%s", len(builds), logData)
	}
	sort.Slice(builds, func(i, j int) bool { return len(builds[i].pkgs) > len(builds[j].pkgs) })
	plugins, k8s, own := builds[0], builds[1], builds[2]
	repo, _ := filepath.Abs("../..")
	if own.dir != repo || strings.Join(own.pkgs, " ") != "./internal/ipam/cmd/nodeprep-ipam" {
		t.Errorf("nodeprep-ipam build: %v in %s, want ./internal/ipam/cmd/nodeprep-ipam in %s", own.pkgs, own.dir, repo)
	}
	if !strings.Contains(filepath.Base(out), "_nodeprep-ipam-") {
		t.Errorf("bundle version %s does not name nodeprep-ipam's hash", filepath.Base(out))
	}
	if len(plugins.pkgs) != 5 || len(k8s.pkgs) != 2 {
		t.Errorf("builds: %v and %v; want the 5 reference plugins together, multus and whereabouts together", plugins.pkgs, k8s.pkgs)
	}
	if plugins.start >= k8s.end || k8s.start >= plugins.end {
		t.Errorf("the two builds ran one after the other, not side by side:\n%s", logData)
	}
	gomod, err := os.ReadFile(filepath.Join(k8s.dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(gomod), "replace github.com/gogo/protobuf"); n != 1 {
		t.Errorf("the shared module has %d replace lines for one path:\n%s", n, gomod)
	}
	if !strings.Contains(string(gomod), "require gopkg.in/k8snetworkplumbingwg/multus-cni.v4") || !strings.Contains(string(gomod), "require github.com/k8snetworkplumbingwg/whereabouts") {
		t.Errorf("shared module:\n%s", gomod)
	}
	for _, want := range []string{"plugins: compiling 5 binaries", "k8s: compiling 2 binaries", "k8s: done"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("no progress line %q in:\n%s", want, stderr.String())
		}
	}
}

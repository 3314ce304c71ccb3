package vm

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	reVMTest  = regexp.MustCompile(`(?m)^func (TestVM\w*)\(`)
	reGoTest  = regexp.MustCompile(`(?m)^exec go test .*$`)
	rePackage = regexp.MustCompile(`\./[\w./-]+`)
)

// TestEveryVMTestHasAMakeTarget: every TestVM* in the tree is run by a
// script behind `make test-vm` (test/vm/run.sh, test/dpdkvm/run.sh) and
// named in the README, so none is written and then never run.
func TestEveryVMTestHasAMakeTarget(t *testing.T) {
	root := "../.."
	var patterns []string
	for _, script := range []string{"test/vm/run.sh", "test/dpdkvm/run.sh"} {
		data, err := os.ReadFile(filepath.Join(root, script))
		if err != nil {
			t.Fatal(err)
		}
		line := reGoTest.FindString(string(data))
		if line == "" || !strings.Contains(line, "^TestVM") {
			t.Fatalf("%s has no `exec go test -run '^TestVM' ...` line", script)
		}
		patterns = append(patterns, rePackage.FindAllString(line, -1)...)
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, script := range []string{"./test/vm/run.sh", "./test/dpdkvm/run.sh"} {
		if !strings.Contains(string(makefile)[strings.Index(string(makefile), "test-vm:"):], script) {
			t.Errorf("make test-vm does not run %s", script)
		}
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".cache" || d.Name() == ".git" || d.Name() == "packer") {
			return filepath.SkipDir // packer/ is its own module, with its own targets
		}
		if !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		pkg := "./" + filepath.ToSlash(rel)
		for _, m := range reVMTest.FindAllStringSubmatch(string(data), -1) {
			found++
			name := m[1]
			if !covered(pkg, patterns) {
				t.Errorf("%s (%s) is run by no make target: add %s to test/vm/run.sh", name, pkg, pkg)
			}
			if !strings.Contains(string(readme), "`"+name+"`") {
				t.Errorf("%s (%s) is not named in the README's VM test table", name, pkg)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 10 {
		t.Fatalf("found only %d TestVM* functions: the walk is broken", found)
	}
}

func covered(pkg string, patterns []string) bool {
	for _, p := range patterns {
		p = strings.TrimSuffix(p, "/")
		if base, ok := strings.CutSuffix(p, "/..."); ok {
			if pkg == base || strings.HasPrefix(pkg, base+"/") {
				return true
			}
		} else if pkg == p {
			return true
		}
	}
	return false
}

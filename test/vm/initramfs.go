package vm

import (
	"bufio"
	"compress/gzip"
	"context"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

//go:embed guest/init guest/helpers.sh
var guestFiles embed.FS

// buildInitramfs stages the guest tree in work/root and writes
// work/initramfs.cpio.gz.
func buildInitramfs(ctx context.Context, tools Tools, k *Kernel, spec Spec, work string) (string, error) {
	root := filepath.Join(work, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", err
	}
	if err := copyFile(tools.Busybox, filepath.Join(root, "bin", "busybox"), 0o755); err != nil {
		return "", err
	}
	for _, f := range []struct {
		embedded, dst string
		mode          os.FileMode
	}{
		{"guest/init", "init", 0o755},
		{"guest/helpers.sh", "etc/vm/helpers.sh", 0o644},
	} {
		data, err := guestFiles.ReadFile(f.embedded)
		if err != nil {
			return "", err
		}
		if err := writeFile(filepath.Join(root, f.dst), data, f.mode); err != nil {
			return "", err
		}
	}

	if err := stageModules(k, spec.modules(), root); err != nil {
		return "", err
	}
	if err := writeFile(filepath.Join(root, "etc", "vm", "boot-modules"), []byte(strings.Join(spec.bootModules(), "\n")+"\n"), 0o644); err != nil {
		return "", err
	}
	if err := writeFile(filepath.Join(root, "etc", "vm", "net"), []byte(spec.netConfig()), 0o644); err != nil {
		return "", err
	}
	script := "#!/bin/sh\n. /etc/vm/helpers.sh\n" + spec.Script + "\n"
	if err := writeFile(filepath.Join(root, "etc", "vm", "script.sh"), []byte(script), 0o755); err != nil {
		return "", err
	}

	for guest, host := range spec.Files {
		dst, err := guestPath(root, guest)
		if err != nil {
			return "", err
		}
		st, err := os.Stat(host)
		if err != nil {
			return "", fmt.Errorf("Spec.Files[%q]: %w", guest, err)
		}
		if err := copyFile(host, dst, st.Mode().Perm()); err != nil {
			return "", fmt.Errorf("Spec.Files[%q]: %w", guest, err)
		}
	}
	for guest, data := range spec.FileContents {
		dst, err := guestPath(root, guest)
		if err != nil {
			return "", err
		}
		if err := writeFile(dst, data, 0o644); err != nil {
			return "", fmt.Errorf("Spec.FileContents[%q]: %w", guest, err)
		}
	}

	out := filepath.Join(work, "initramfs.cpio.gz")
	if err := writeCPIO(ctx, tools.CPIO, root, out); err != nil {
		return "", err
	}
	return out, nil
}

// guestPath maps an absolute guest path into the staging root, refusing
// relative paths and escapes.
func guestPath(root, guest string) (string, error) {
	clean := path.Clean(guest)
	if !path.IsAbs(guest) || clean == "/" {
		return "", fmt.Errorf("guest path %q: must be an absolute file path", guest)
	}
	return filepath.Join(root, filepath.FromSlash(clean)), nil
}

// stageModules copies the closure of mods and a modules.dep limited to it,
// so busybox modprobe resolves dependencies as on a real host.
func stageModules(k *Kernel, mods []string, root string) error {
	paths, err := k.moduleClosure(mods)
	if err != nil {
		return err
	}
	dst := filepath.Join(root, "lib", "modules", k.Release)
	var dep strings.Builder
	for _, p := range paths {
		if err := copyFile(filepath.Join(k.ModulesDir, p), filepath.Join(dst, p), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(&dep, "%s:", p)
		for _, d := range k.deps[ModuleName(p)] {
			fmt.Fprintf(&dep, " %s", d)
		}
		dep.WriteString("\n")
	}
	if err := writeFile(filepath.Join(dst, "modules.dep"), []byte(dep.String()), 0o644); err != nil {
		return err
	}
	for _, f := range []string{"modules.builtin", "modules.order"} {
		if err := copyFile(filepath.Join(k.ModulesDir, f), filepath.Join(dst, f), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeCPIO packs root as a newc archive (owned by root:root, as the kernel
// expects) and gzips it.
func writeCPIO(ctx context.Context, cpio, root, out string) error {
	var names []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		names = append(names, rel)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)

	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	zw, err := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, cpio, "--quiet", "-o", "-H", "newc", "-R", "0:0", "--null")
	cmd.Dir = root
	cmd.Stdin = strings.NewReader(strings.Join(names, "\x00") + "\x00")
	cmd.Stdout = zw
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("cpio: %w: %s", err, stderr.String())
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

func writeFile(dst string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		return err
	}
	return os.Chmod(dst, mode) // WriteFile's mode is filtered by umask
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, bufio.NewReader(in)); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

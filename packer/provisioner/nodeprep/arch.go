package nodeprep

import (
	"debug/elf"
	"fmt"
)

// elfGOARCH is the GOARCH an ELF executable was built for, so a build for
// one architecture cannot ship the agent or CNI plugins of the other.
func elfGOARCH(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	}
	return "", fmt.Errorf("%s: ELF machine %s is neither x86_64 nor aarch64", path, f.Machine)
}

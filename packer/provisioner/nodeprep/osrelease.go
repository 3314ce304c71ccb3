package nodeprep

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Family is the distribution family of the image being built.
type Family string

// Supported families, detected from /etc/os-release.
const (
	FamilyAL2023 Family = "al2023"
	FamilyDebian Family = "debian"
)

// ErrUnsupportedDistro is returned when /etc/os-release names neither family.
var ErrUnsupportedDistro = errors.New("unsupported distribution")

// parseOSRelease returns the family named by an os-release file.
func parseOSRelease(data []byte) (Family, error) {
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		vals[k] = strings.Trim(v, `"'`)
	}
	id := vals["ID"]
	like := strings.Fields(vals["ID_LIKE"])
	switch {
	case id == "amzn" && vals["VERSION_ID"] == "2023":
		return FamilyAL2023, nil
	case id == "debian" || id == "ubuntu" || slices.Contains(like, "debian") || slices.Contains(like, "ubuntu"):
		return FamilyDebian, nil
	}
	return "", fmt.Errorf("%w: ID=%q VERSION_ID=%q ID_LIKE=%q (want amzn 2023 or a Debian/Ubuntu family)",
		ErrUnsupportedDistro, id, vals["VERSION_ID"], vals["ID_LIKE"])
}

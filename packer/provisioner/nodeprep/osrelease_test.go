package nodeprep

import (
	"errors"
	"testing"
)

func TestParseOSRelease(t *testing.T) {
	cases := map[string]Family{
		debianOSRelease: FamilyDebian,
		al2023OSRelease: FamilyAL2023,
		"NAME=\"Ubuntu\"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\"\n": FamilyDebian,
		"ID=pop\nID_LIKE=\"ubuntu debian\"\n":                                FamilyDebian,
	}
	for in, want := range cases {
		got, err := parseOSRelease([]byte(in))
		if err != nil || got != want {
			t.Errorf("parseOSRelease(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"ID=amzn\nVERSION_ID=\"2\"\n", "ID=fedora\n", ""} {
		if _, err := parseOSRelease([]byte(in)); !errors.Is(err, ErrUnsupportedDistro) {
			t.Errorf("parseOSRelease(%q) err = %v, want ErrUnsupportedDistro", in, err)
		}
	}
}

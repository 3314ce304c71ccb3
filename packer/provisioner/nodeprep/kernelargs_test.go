package nodeprep

import "testing"

func TestSetGrubCmdline(t *testing.T) {
	args := []string{"default_hugepagesz=1G", "hugepagesz=1G", "hugepages=8", "intel_iommu=on", "iommu=pt"}
	cases := []struct {
		name, in, want string
		changed        bool
	}{
		{"replaces same keys, keeps others",
			"A=1\nGRUB_CMDLINE_LINUX=\"console=ttyS0 hugepages=2 iommu=off\"\nB=2\n",
			"A=1\nGRUB_CMDLINE_LINUX=\"console=ttyS0 default_hugepagesz=1G hugepagesz=1G hugepages=8 intel_iommu=on iommu=pt\"\nB=2\n", true},
		{"empty value", "GRUB_CMDLINE_LINUX=\"\"\n",
			"GRUB_CMDLINE_LINUX=\"default_hugepagesz=1G hugepagesz=1G hugepages=8 intel_iommu=on iommu=pt\"\n", true},
		{"single quotes", "GRUB_CMDLINE_LINUX='net.ifnames=0'\n",
			"GRUB_CMDLINE_LINUX=\"net.ifnames=0 default_hugepagesz=1G hugepagesz=1G hugepages=8 intel_iommu=on iommu=pt\"\n", true},
		{"missing line, no trailing newline", "GRUB_TIMEOUT=0",
			"GRUB_TIMEOUT=0\nGRUB_CMDLINE_LINUX=\"default_hugepagesz=1G hugepagesz=1G hugepages=8 intel_iommu=on iommu=pt\"\n", true},
		{"already set is a no-op",
			"GRUB_CMDLINE_LINUX=\"console=ttyS0 default_hugepagesz=1G hugepagesz=1G hugepages=8 intel_iommu=on iommu=pt\"\n",
			"GRUB_CMDLINE_LINUX=\"console=ttyS0 default_hugepagesz=1G hugepagesz=1G hugepages=8 intel_iommu=on iommu=pt\"\n", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, changed, err := setGrubCmdline([]byte(tc.in), args)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want || changed != tc.changed {
				t.Fatalf("got changed=%v\n%s\nwant changed=%v\n%s", changed, got, tc.changed, tc.want)
			}
			again, changed, err := setGrubCmdline(got, args)
			if err != nil || changed || string(again) != string(got) {
				t.Fatalf("second application changed the file: %v %v\n%s", changed, err, again)
			}
		})
	}
	for _, bad := range []string{
		"GRUB_CMDLINE_LINUX=\"$GRUB_CMDLINE_LINUX x\"\n",
		"GRUB_CMDLINE_LINUX=\"a\"\nGRUB_CMDLINE_LINUX=\"b\"\n",
		"GRUB_CMDLINE_LINUX=`x`\n",
	} {
		if _, _, err := setGrubCmdline([]byte(bad), args); err == nil {
			t.Errorf("setGrubCmdline accepted %q", bad)
		}
	}
}

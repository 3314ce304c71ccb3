package instancelimits

import "testing"

// The published numbers (EC2 User Guide, "Maximum IP addresses per network
// interface") for a few types, checked against the extracted table.
func TestTableMatchesPublishedLimits(t *testing.T) {
	tab, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(tab) < 500 {
		t.Fatalf("only %d instance types", len(tab))
	}
	for typ, want := range map[string]Limits{
		"t3.medium":     {ENIsPerCard: 3, IPv4PerENI: 6, NetworkCards: 1, Nitro: true},
		"c5.large":      {ENIsPerCard: 3, IPv4PerENI: 10, NetworkCards: 1, Nitro: true},
		"c5n.18xlarge":  {ENIsPerCard: 15, IPv4PerENI: 50, NetworkCards: 1, Nitro: true},
		"c6in.32xlarge": {ENIsPerCard: 8, IPv4PerENI: 50, NetworkCards: 2, Nitro: true},
	} {
		if got := tab[typ]; got != want {
			t.Errorf("%s: %+v, want %+v", typ, got, want)
		}
	}
	if tab["c5.large"].PodSlots() != 9 {
		t.Error("c5.large pod slots")
	}
}

func TestParseRejectsAShortLine(t *testing.T) {
	if _, err := Parse("c5.large\t3\t10\n"); err == nil {
		t.Fatal("accepted")
	}
}

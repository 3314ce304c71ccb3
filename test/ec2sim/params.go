package ec2sim

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// params reads EC2 Query parameters; lists are flattened as Name.1, Name.2.
// rng is the calling client's generator, for the draws the call makes.
type params struct {
	url.Values
	rng *rand.Rand
	// nicWithheld: FaultNICNeverAppears hit this attach.
	nicWithheld bool
}

func (p params) str(k string) string { return p.Get(k) }

func (p params) has(k string) bool { _, ok := p.Values[k]; return ok }

// indexes returns the sorted N of keys "prefix.N" or "prefix.N.<rest>".
func (p params) indexes(prefix string) []int {
	seen := map[int]bool{}
	for k := range p.Values {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 {
			continue
		}
		seen[n] = true
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// list returns the values of prefix.1, prefix.2, ...
func (p params) list(prefix string) []string {
	var out []string
	for _, n := range p.indexes(prefix) {
		k := fmt.Sprintf("%s.%d", prefix, n)
		if p.has(k) {
			out = append(out, p.Get(k))
		}
	}
	return out
}

func (p params) integer(k string) (int, bool, *apiError) {
	if !p.has(k) {
		return 0, false, nil
	}
	n, err := strconv.Atoi(p.Get(k))
	if err != nil {
		return 0, true, errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for %s", p.Get(k), k))
	}
	return n, true, nil
}

func (p params) boolean(k string) (bool, bool, *apiError) {
	if !p.has(k) {
		return false, false, nil
	}
	switch strings.ToLower(p.Get(k)) {
	case "true":
		return true, true, nil
	case "false":
		return false, true, nil
	}
	return false, true, errInvalidParameterValue(fmt.Sprintf("Invalid value '%s' for %s", p.Get(k), k))
}

type filter struct {
	Name   string
	Values []string
}

func (p params) filters() ([]filter, *apiError) {
	var out []filter
	for _, n := range p.indexes("Filter") {
		name := p.Get(fmt.Sprintf("Filter.%d.Name", n))
		if name == "" {
			return nil, errMissing(fmt.Sprintf("Filter.%d.Name", n))
		}
		out = append(out, filter{Name: name, Values: p.list(fmt.Sprintf("Filter.%d.Value", n))})
	}
	return out, nil
}

// tagList reads prefix.N.Key / prefix.N.Value.
func (p params) tagList(prefix string) (map[string]string, *apiError) {
	tags := map[string]string{}
	for _, n := range p.indexes(prefix) {
		k := p.Get(fmt.Sprintf("%s.%d.Key", prefix, n))
		if k == "" {
			return nil, errInvalidParameterValue("Tag keys must not be empty")
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, errInvalidParameterValue("Tag keys starting with 'aws:' are reserved for internal use")
		}
		tags[k] = p.Get(fmt.Sprintf("%s.%d.Value", prefix, n))
	}
	if len(tags) > 50 {
		return nil, &apiError{Code: "TagLimitExceeded", Message: "The maximum number of Tags for a resource has been reached."}
	}
	return tags, nil
}

// fingerprint identifies a request's parameters for ClientToken checks.
func (p params) fingerprint() string {
	keys := make([]string, 0, len(p.Values))
	for k := range p.Values {
		if k == "ClientToken" || k == "Action" || k == "Version" {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q;", k, p.Values[k])
	}
	return b.String()
}

// matchGlob matches EC2 filter wildcards: * any run, ? one character.
func matchGlob(pattern, s string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == s
	}
	px, sx := 0, 0
	nextPx, nextSx := -1, -1
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				nextPx, nextSx = px, sx+1
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		}
		if nextSx > 0 && nextSx <= len(s) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}

// matchAny reports whether any of the filter values matches one of vals.
func matchAny(patterns []string, vals ...string) bool {
	for _, p := range patterns {
		for _, v := range vals {
			if matchGlob(p, v) {
				return true
			}
		}
	}
	return false
}

// Package nodeadmtest judges nodeprep's nodeadm drop-in the way nodeadm
// and kubelet read it, for tests of any package.
package nodeadmtest

import (
	"errors"
	"io/fs"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// DropInDir is nodeadm's drop-in directory (nodeadm.DropInDir, repeated so
// the judge does not take nodeprep's word for where nodeadm reads).
const DropInDir = "/etc/eks/nodeadm.d"

// OnNode is what kubelet registers with on a node: nodeadm-run.service's
// `--config-source imds://user-data --config-source file:///etc/eks/nodeadm.d/`
// merges user data's NodeConfigs, then every .yaml/.yml/.json drop-in in
// file-name order.
func OnNode(t testing.TB, root hostfs.Root, userData ...[]byte) (taints []string, maxPods any) {
	t.Helper()
	docs := append([][]byte(nil), userData...)
	names, err := root.ReadDirNames(DropInDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	sort.Strings(names)
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, ".yml") && !strings.HasSuffix(name, ".json") {
			continue
		}
		p, err := root.Path(DropInDir + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			continue // not a file: nothing nodeadm could read
		}
		data, err := root.ReadFile(DropInDir + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, data)
	}
	return EffectiveKubelet(t, docs...)
}

// EffectiveKubelet is the judge: it reproduces, on untyped documents,
// how nodeadm merges NodeConfigs (awslabs/amazon-eks-ami
// nodeadm/internal/api/merge.go: mergo.Merge with WithOverride, so maps merge
// key by key, a later non-empty value wins and lists are replaced; the
// kubelet.flags slice alone is appended, by mergeKubeletFlags; kubelet.config
// goes through mergeInlineDocument, the same override merge) and then how
// kubelet resolves them: flags are parsed in order, --register-with-taints is
// last-wins, and a flag overrides the config file's registerWithTaints.
func EffectiveKubelet(t testing.TB, docs ...[]byte) (taints []string, maxPods any) {
	t.Helper()
	merged := map[string]any{}
	var flags []string
	for _, d := range docs {
		var doc map[string]any
		if err := yaml.Unmarshal(d, &doc); err != nil {
			t.Fatalf("%v\n%s", err, d)
		}
		kubelet, _ := dig(doc, "spec", "kubelet").(map[string]any)
		if fl, ok := kubelet["flags"].([]any); ok {
			for _, f := range fl {
				flags = append(flags, f.(string))
			}
			delete(kubelet, "flags")
		}
		mergoOverride(merged, doc)
	}
	var fromFlag *string
	for _, f := range flags {
		if v, ok := strings.CutPrefix(f, "--register-with-taints="); ok {
			fromFlag = &v
		}
		if v, ok := strings.CutPrefix(f, "--max-pods="); ok {
			maxPods = v
		}
	}
	if maxPods == nil {
		maxPods = dig(merged, "spec", "kubelet", "config", "maxPods")
	}
	if fromFlag != nil {
		taints = append(taints, strings.Split(*fromFlag, ",")...)
	} else if list, ok := dig(merged, "spec", "kubelet", "config", "registerWithTaints").([]any); ok {
		for _, item := range list {
			m := item.(map[string]any)
			s := m["key"].(string)
			if v, ok := m["value"].(string); ok && v != "" {
				s += "=" + v
			}
			taints = append(taints, s+":"+m["effect"].(string))
		}
	}
	sort.Strings(taints)
	return taints, maxPods
}

// mergoOverride is mergo.Merge(dst, src, mergo.WithOverride) on untyped maps.
func mergoOverride(dst, src map[string]any) {
	for k, sv := range src {
		if sm, ok := sv.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergoOverride(dm, sm)
				continue
			}
		}
		if !reflect.ValueOf(sv).IsValid() || reflect.ValueOf(sv).IsZero() {
			continue // mergo does not override with an empty value
		}
		dst[k] = sv
	}
}

func dig(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

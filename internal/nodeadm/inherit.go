package nodeadm

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/nodeprep/nodeprep/internal/api"
	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// Inherited is what the NodeConfigs nodeadm merges before nodeprep's drop-in
// already ask of kubelet. nodeprep's drop-in must carry it forward where
// nodeadm's merge would otherwise drop it.
type Inherited struct {
	// Taints kubelet would register with without nodeprep's drop-in, e.g.
	// Karpenter's karpenter.sh/unregistered.
	Taints []api.Taint
	// MaxPodsSet is true when an earlier NodeConfig sets kubelet's maxPods
	// (config.maxPods, --max-pods, or nodeadm's kubelet.maxPodsExpression),
	// which nodeprep then leaves alone: nodeadm's maxPods beats the
	// expression, so a number from nodeprep would silently replace the user's.
	MaxPodsSet bool
	// KubeletConfig is the earlier NodeConfigs' kubelet.config merged key by
	// key, later documents winning, as nodeadm merges them; a CPU profile
	// leaves the values set here to the user.
	KubeletConfig map[string]any
}

// nodeConfigDoc is the part of a NodeConfig that Inherit reads.
type nodeConfigDoc struct {
	Spec struct {
		Kubelet struct {
			Config            map[string]any `yaml:"config"`
			Flags             []string       `yaml:"flags"`
			MaxPodsExpression string         `yaml:"maxPodsExpression"`
		} `yaml:"kubelet"`
	} `yaml:"spec"`
}

// Inherit reads the NodeConfigs that nodeadm merges before DropInPath, in
// nodeadm's order: the user data documents first (userData, as returned by
// userdata.ExtractNodeadm), then every other drop-in in DropInDir whose name
// sorts before nodeprep's. It resolves them the way nodeadm and kubelet do:
//
//   - kubelet.flags are appended across documents, and for the single-value
//     --register-with-taints and --max-pods the last one wins;
//   - kubelet.config is merged key by key with later documents winning, and
//     a list such as registerWithTaints is replaced whole (nodeadm
//     internal/api/merge.go: mergo.WithOverride, flags appended by
//     mergeKubeletFlags, config by mergeInlineDocument);
//   - a kubelet flag overrides the same setting in the config file.
func Inherit(root hostfs.Root, userData [][]byte) (Inherited, error) {
	docs := append([][]byte(nil), userData...)
	names, err := root.ReadDirNames(DropInDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Inherited{}, err
	}
	sort.Strings(names)
	for _, name := range names {
		if name >= path.Base(DropInPath) {
			break
		}
		switch path.Ext(name) {
		case ".yaml", ".yml", ".json":
		default:
			continue
		}
		data, err := root.ReadFile(path.Join(DropInDir, name))
		if err != nil {
			return Inherited{}, err
		}
		docs = append(docs, data)
	}
	var flags []string
	var configTaints []any
	in := Inherited{KubeletConfig: map[string]any{}}
	for i, data := range docs {
		var doc nodeConfigDoc
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return Inherited{}, fmt.Errorf("NodeConfig %d: %w", i+1, err)
		}
		flags = append(flags, doc.Spec.Kubelet.Flags...)
		if t, ok := doc.Spec.Kubelet.Config["registerWithTaints"].([]any); ok && len(t) > 0 {
			configTaints = t
		}
		mergeConfig(in.KubeletConfig, doc.Spec.Kubelet.Config)
		if _, ok := doc.Spec.Kubelet.Config["maxPods"]; ok || doc.Spec.Kubelet.MaxPodsExpression != "" {
			in.MaxPodsSet = true
		}
	}
	flagTaints, flagSet := "", false
	for _, f := range flags {
		if v, ok := flagValue(f, "register-with-taints"); ok {
			flagTaints, flagSet = v, true
		}
		if _, ok := flagValue(f, "max-pods"); ok {
			in.MaxPodsSet = true
		}
	}
	if flagSet {
		in.Taints, err = parseTaintFlag(flagTaints)
	} else {
		in.Taints, err = parseConfigTaints(configTaints)
	}
	return in, err
}

// flagValue returns the value of --name=value (or -name=value), unquoted.
func flagValue(flag, name string) (string, bool) {
	f := strings.TrimLeft(flag, "-")
	v, ok := strings.CutPrefix(f, name+"=")
	if !ok || f == flag {
		return "", false
	}
	return strings.Trim(v, `"'`), true
}

// parseTaintFlag reads kubelet's --register-with-taints form: key=value:Effect,key:Effect.
func parseTaintFlag(s string) ([]api.Taint, error) {
	var out []api.Taint
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		kv, effect, ok := strings.Cut(item, ":")
		if !ok {
			return nil, fmt.Errorf("--register-with-taints: %q has no effect", item)
		}
		key, value, _ := strings.Cut(kv, "=")
		out = append(out, api.Taint{Key: key, Value: value, Effect: effect})
	}
	return out, nil
}

func parseConfigTaints(items []any) ([]api.Taint, error) {
	var out []api.Taint
	for _, item := range items {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("kubelet config registerWithTaints: %v is not a taint", item)
		}
		var t api.Taint
		t.Key, _ = m["key"].(string)
		t.Value, _ = m["value"].(string)
		t.Effect, _ = m["effect"].(string)
		out = append(out, t)
	}
	return out, nil
}

// unionTaints is inherited followed by own; a taint of own replaces an
// inherited one with the same key and effect, as kubelet would treat the
// pair as one taint.
func unionTaints(inherited, own []api.Taint) []api.Taint {
	out := make([]api.Taint, 0, len(inherited)+len(own))
	index := map[[2]string]int{}
	for _, t := range append(append([]api.Taint(nil), inherited...), own...) {
		id := [2]string{t.Key, t.Effect}
		if i, ok := index[id]; ok {
			out[i] = t
			continue
		}
		index[id] = len(out)
		out = append(out, t)
	}
	return out
}

// mergeConfig lays src over dst as nodeadm's mergo.WithOverride does:
// mappings merge key by key, anything else is replaced.
func mergeConfig(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeConfig(dm, sm)
				continue
			}
			cp := map[string]any{}
			mergeConfig(cp, sm)
			dst[k] = cp
			continue
		}
		dst[k] = v
	}
}

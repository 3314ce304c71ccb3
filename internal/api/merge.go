package api

import (
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"
)

// Merging is done on the YAML trees, not on the decoded structs, so that a
// field a later part sets wins even when its value is false, 0 or "": a
// struct cannot tell "set to 0" from "not given". The rules:
//   - a field given in a later part replaces the earlier value; a null
//     value counts as not given;
//   - mappings (spec, labels, tags, perNUMANode, ...) merge key by key;
//   - spec.interfaces merge by name and spec.hugepages by size, so a later
//     part can change one interface without repeating the others; an element
//     with `remove: true` deletes the earlier one of that name or size;
//   - in a hugepages element, count and perNUMANode replace each other;
//   - every other list is replaced whole.

// keyedLists names the lists merged element by element, and the field that
// identifies an element.
var keyedLists = map[string]string{
	"spec.interfaces": "name",
	"spec.hugepages":  "size",
}

// exclusiveFields are fields of a keyed element where setting one in a later
// part clears the other from the earlier part.
var exclusiveFields = map[string][2]string{
	"spec.hugepages": {"count", "perNUMANode"},
}

const removeField = "remove"

// MergeError is a problem merging one part over the earlier ones.
type MergeError struct {
	Path   string
	Reason string
}

func (e *MergeError) Error() string { return e.Path + ": " + e.Reason }

// mergeNode returns dst with src laid over it. dst may be nil (nothing set
// yet). Nodes of dst are updated in place.
func mergeNode(dst, src *yaml.Node, path string) (*yaml.Node, error) {
	if isNull(src) {
		return dst, nil
	}
	if dst != nil && (dst.Kind != src.Kind || isNull(dst)) {
		dst = nil // a different shape replaces; the typed decode reports misuse
	}
	switch {
	case src.Kind == yaml.MappingNode:
		if dst == nil {
			dst = &yaml.Node{Kind: yaml.MappingNode, Tag: src.Tag, Line: src.Line, Column: src.Column}
		}
		return dst, mergeMapping(dst, src, path)
	case src.Kind == yaml.SequenceNode && keyedLists[path] != "":
		if dst == nil {
			dst = &yaml.Node{Kind: yaml.SequenceNode, Tag: src.Tag, Line: src.Line, Column: src.Column}
		}
		return dst, mergeKeyed(dst, src, path, keyedLists[path])
	}
	return src, nil
}

func mergeMapping(dst, src *yaml.Node, path string) error {
	var errs []error
	for i := 0; i+1 < len(src.Content); i += 2 {
		key, val := src.Content[i], src.Content[i+1]
		childPath := joinPath(path, key.Value)
		j := mappingIndex(dst, key.Value)
		var old *yaml.Node
		if j >= 0 {
			old = dst.Content[j+1]
		}
		merged, err := mergeNode(old, val, childPath)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case merged == nil:
		case j >= 0:
			dst.Content[j+1] = merged
		default:
			dst.Content = append(dst.Content, key, merged)
		}
	}
	return errors.Join(errs...)
}

func mergeKeyed(dst, src *yaml.Node, path, keyField string) error {
	// Only elements from earlier parts are matched: two elements with one
	// key in the same part stay apart, for validation to report.
	earlier := make(map[*yaml.Node]bool, len(dst.Content))
	for _, have := range dst.Content {
		earlier[have] = true
	}
	var errs []error
	for i, el := range src.Content {
		elPath := fmt.Sprintf("%s[%d]", path, i)
		key := scalarField(el, keyField)
		j := -1
		for k, have := range dst.Content {
			if key != "" && earlier[have] && scalarField(have, keyField) == key {
				j = k
				break
			}
		}
		if remove := scalarField(el, removeField); remove != "" {
			if remove != "true" {
				errs = append(errs, &MergeError{Path: elPath + "." + removeField, Reason: "can only be true"})
				continue
			}
			if key == "" || len(el.Content) != 4 {
				errs = append(errs, &MergeError{Path: elPath, Reason: fmt.Sprintf("an element with remove: true gives only %s", keyField)})
				continue
			}
			if j >= 0 {
				dst.Content = append(dst.Content[:j], dst.Content[j+1:]...)
			}
			continue
		}
		var old *yaml.Node
		if j >= 0 {
			old = dst.Content[j]
			if pair, ok := exclusiveFields[path]; ok {
				clearOther(old, el, pair)
			}
		}
		merged, err := mergeNode(old, el, elPath)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if j >= 0 {
			delete(earlier, dst.Content[j])
			dst.Content[j] = merged
		} else {
			dst.Content = append(dst.Content, merged)
		}
	}
	return errors.Join(errs...)
}

// clearOther removes from dst whichever of the pair src sets.
func clearOther(dst, src *yaml.Node, pair [2]string) {
	for k, field := range pair {
		other := pair[1-k]
		if j := mappingIndex(src, field); j >= 0 && !isNull(src.Content[j+1]) {
			if o := mappingIndex(dst, other); o >= 0 {
				dst.Content = append(dst.Content[:o], dst.Content[o+2:]...)
			}
		}
	}
}

func mappingIndex(n *yaml.Node, key string) int {
	if n == nil || n.Kind != yaml.MappingNode {
		return -1
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return i
		}
	}
	return -1
}

func scalarField(n *yaml.Node, key string) string {
	if j := mappingIndex(n, key); j >= 0 && n.Content[j+1].Kind == yaml.ScalarNode {
		return n.Content[j+1].Value
	}
	return ""
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// Source is one config document and where it came from, for error messages.
type Source struct {
	Name string
	Data []byte
}

// SourceError says which document a decode problem is in.
type SourceError struct {
	Source string
	Err    error
}

func (e *SourceError) Error() string { return fmt.Sprintf("%s: %v", e.Source, e.Err) }
func (e *SourceError) Unwrap() error { return e.Err }

// Load decodes each source strictly, merges them in order (later wins, see
// the rules above), applies defaults and validates. Every problem in every
// source is reported.
func Load(sources ...Source) (*NodePrepConfig, error) {
	var merged *yaml.Node
	var errs []error
	for _, src := range sources {
		root, err := decodeNode(src.Data)
		if err == nil {
			_, err = decodeTyped(root) // type errors are reported per source
		}
		if err == nil {
			merged, err = mergeNode(merged, root, "")
		}
		if err != nil {
			errs = append(errs, &SourceError{Source: src.Name, Err: err})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	cfg := &NodePrepConfig{}
	if merged != nil {
		var err error
		if cfg, err = decodeTyped(merged); err != nil {
			return nil, err
		}
	}
	SetDefaults(cfg)
	if err := Validate(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxConfigBytes bounds one config document, so a small hostile input can't
// make the decoder allocate without limit.
const MaxConfigBytes = 1 << 20

// ErrTooLarge is returned for a document over MaxConfigBytes.
var ErrTooLarge = errors.New("config larger than 1 MiB")

// DecodeError is a problem at a place in the YAML source.
type DecodeError struct {
	Line, Column int
	Path         string
	Reason       string
}

func (e *DecodeError) Error() string {
	loc := ""
	if e.Line > 0 {
		loc = fmt.Sprintf("line %d, column %d: ", e.Line, e.Column)
	}
	if e.Path != "" {
		return fmt.Sprintf("%s%s: %s", loc, DisplayPath(e.Path), e.Reason)
	}
	return loc + e.Reason
}

// Decode strictly decodes one YAML document. Unknown fields are errors that
// give their line, column and field path. It neither defaults nor validates.
func Decode(data []byte) (*NodePrepConfig, error) {
	root, err := decodeNode(data)
	if err != nil {
		return nil, err
	}
	return decodeTyped(root)
}

func decodeTyped(root *yaml.Node) (*NodePrepConfig, error) {
	var cfg NodePrepConfig
	if err := root.Decode(&cfg); err != nil {
		return nil, &DecodeError{Reason: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	return &cfg, nil
}

// decodeNode parses one document and checks it strictly, keeping the YAML
// tree: the merge needs to know which fields a part set, not just their values.
func decodeNode(data []byte) (*yaml.Node, error) {
	if len(data) > MaxConfigBytes {
		return nil, ErrTooLarge
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &DecodeError{Reason: "empty document"}
		}
		return nil, &DecodeError{Reason: err.Error()}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &DecodeError{Line: extra.Line, Column: extra.Column, Reason: "more than one YAML document; give each config its own MIME part"}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if err := rejectAliases(root); err != nil {
		return nil, err
	}
	var errs []error
	checkKnownFields(root, reflect.TypeOf(NodePrepConfig{}), "", &errs)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return root, nil
}

// rejectAliases refuses YAML aliases: configs never need them, and expanding
// them is how a tiny document becomes a huge one.
func rejectAliases(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode {
		return &DecodeError{Line: n.Line, Column: n.Column, Reason: "YAML aliases are not allowed"}
	}
	for _, c := range n.Content {
		if err := rejectAliases(c); err != nil {
			return err
		}
	}
	return nil
}

// checkKnownFields walks the YAML tree beside the Go type and reports every
// mapping key that has no field, with its position.
func checkKnownFields(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the typed decode reports the mismatch
		}
		fields := yamlFields(t)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			p := joinPath(path, key.Value)
			if seen[key.Value] {
				*errs = append(*errs, &DecodeError{Line: key.Line, Column: key.Column, Path: p, Reason: "duplicate field"})
				continue
			}
			seen[key.Value] = true
			ft, ok := fields[key.Value]
			if !ok {
				*errs = append(*errs, &DecodeError{Line: key.Line, Column: key.Column, Path: p, Reason: "unknown field" + suggest(key.Value, fields)})
				continue
			}
			checkKnownFields(val, ft, p, errs)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			checkKnownFields(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkKnownFields(n.Content[i+1], t.Elem(), fmt.Sprintf("%s[%s]", path, n.Content[i].Value), errs)
		}
	}
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
	}
	return fields
}

// suggest names a field that differs only in case, the usual mistake
// (subnetId for subnetID).
func suggest(key string, fields map[string]reflect.Type) string {
	for name := range fields {
		if strings.EqualFold(name, key) {
			return fmt.Sprintf(" (did you mean %q?)", name)
		}
	}
	return ""
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

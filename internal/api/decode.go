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
// mapping key that has no field, and every value of the wrong shape, with
// its position and field path: the typed decode would say only "line 7:
// cannot unmarshal", or worse, silently turn 0.5 into 0.
func checkKnownFields(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	fail := func(reason string) {
		*errs = append(*errs, &DecodeError{Line: n.Line, Column: n.Column, Path: path, Reason: reason})
	}
	if isNull(n) {
		return // not given: the default applies
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			fail("must be a mapping of fields, not " + shape(n))
			return
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
			fail("must be a list, not " + shape(n))
			return
		}
		if path == "spec.interfaces" && len(n.Content) > MaxInterfaces {
			// One error, before the merge and validation walk every element:
			// no instance type takes more ENIs than this.
			fail(fmt.Sprintf("%d interfaces; at most %d", len(n.Content), MaxInterfaces))
			return
		}
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if isNull(c) {
				*errs = append(*errs, &DecodeError{Line: c.Line, Column: c.Column, Path: p, Reason: "empty list element (null); remove it or give its fields"})
				continue
			}
			checkKnownFields(c, t.Elem(), p, errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			fail("must be a mapping, not " + shape(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := fmt.Sprintf("%s[%s]", path, k.Value)
			if err := k.Decode(reflect.New(t.Key()).Interface()); err != nil {
				*errs = append(*errs, &DecodeError{Line: k.Line, Column: k.Column, Path: p, Reason: "key must be " + kindName(t.Key())})
				continue
			}
			checkKnownFields(n.Content[i+1], t.Elem(), p, errs)
		}
	default:
		checkScalar(n, t, fail)
	}
}

// checkScalar decodes one leaf on its own, so a wrong type is reported at
// its own field, and refuses what yaml.v3 would accept by truncating: a
// fraction or an exponent for an integer field.
func checkScalar(n *yaml.Node, t reflect.Type, fail func(string)) {
	if n.Kind != yaml.ScalarNode {
		fail("must be " + kindName(t) + ", not " + shape(n))
		return
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.Tag != "!!int" {
			fail(fmt.Sprintf("%s: must be a whole number", DisplayValue(n.Value)))
			return
		}
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		fail(fmt.Sprintf("%s: must be %s", DisplayValue(n.Value), kindName(t)))
	}
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("a whole number that fits %s", t.Kind())
	}
	return t.Kind().String()
}

func shape(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "the value " + DisplayValue(n.Value)
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

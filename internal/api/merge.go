package api

import (
	"errors"
	"fmt"
	"reflect"
)

// Merge lays overlay over base, in place. A set field in overlay wins; maps
// merge key by key; interfaces merge by name and hugepages by size, so a
// later user-data part can change one interface without repeating the others.
func Merge(base *NodePrepConfig, overlay *NodePrepConfig) {
	mergeValue(reflect.ValueOf(base).Elem(), reflect.ValueOf(overlay).Elem())
}

func mergeValue(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Struct:
		for i := 0; i < src.NumField(); i++ {
			mergeValue(dst.Field(i), src.Field(i))
		}
	case reflect.Map:
		if src.IsNil() {
			return
		}
		if dst.IsNil() {
			dst.Set(reflect.MakeMapWithSize(src.Type(), src.Len()))
		}
		iter := src.MapRange()
		for iter.Next() {
			dst.SetMapIndex(iter.Key(), iter.Value())
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		if key := sliceKey(src.Type().Elem()); key != "" && !dst.IsNil() {
			mergeKeyed(dst, src, key)
			return
		}
		dst.Set(src)
	default:
		if !src.IsZero() {
			dst.Set(src)
		}
	}
}

// sliceKey names the field that identifies an element of a mergeable list.
func sliceKey(t reflect.Type) string {
	switch t {
	case reflect.TypeOf(Interface{}):
		return "Name"
	case reflect.TypeOf(Hugepages{}):
		return "Size"
	}
	return ""
}

func mergeKeyed(dst, src reflect.Value, key string) {
	index := map[any]int{}
	for i := 0; i < dst.Len(); i++ {
		index[dst.Index(i).FieldByName(key).Interface()] = i
	}
	out := reflect.AppendSlice(reflect.MakeSlice(dst.Type(), 0, dst.Len()+src.Len()), dst)
	for i := 0; i < src.Len(); i++ {
		el := src.Index(i)
		if j, ok := index[el.FieldByName(key).Interface()]; ok {
			mergeValue(out.Index(j), el)
			continue
		}
		index[el.FieldByName(key).Interface()] = out.Len()
		out = reflect.Append(out, el)
	}
	dst.Set(out)
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

// Load decodes each source strictly, merges them in order (later wins),
// applies defaults and validates. Every problem in every source is reported.
func Load(sources ...Source) (*NodePrepConfig, error) {
	merged := &NodePrepConfig{}
	var errs []error
	for _, src := range sources {
		cfg, err := Decode(src.Data)
		if err != nil {
			errs = append(errs, &SourceError{Source: src.Name, Err: err})
			continue
		}
		Merge(merged, cfg)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	SetDefaults(merged)
	if err := Validate(merged); err != nil {
		return nil, err
	}
	return merged, nil
}

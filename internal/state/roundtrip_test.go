package state

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/internal/hostfs"
)

var (
	addrType   = reflect.TypeFor[netip.Addr]()
	prefixType = reflect.TypeFor[netip.Prefix]()
	timeType   = reflect.TypeFor[time.Time]()
)

// fill sets every field reachable from v to a non-zero value that differs
// from field to field (n counts them), so a field the state file drops,
// renames onto another or cannot parse back shows up as a difference.
func fill(t *testing.T, v reflect.Value, path string, n *int) {
	t.Helper()
	*n++
	switch {
	case v.Type() == addrType:
		v.Set(reflect.ValueOf(netip.AddrFrom4([4]byte{10, 0, byte(*n >> 8), byte(*n)})))
		return
	case v.Type() == prefixType:
		v.Set(reflect.ValueOf(netip.PrefixFrom(netip.AddrFrom16([16]byte{0x26, 0, 15: byte(*n)}), 64+*n%64)))
		return
	case v.Type() == timeType:
		// Nanoseconds too: the file must keep the stages' precision.
		v.Set(reflect.ValueOf(time.Unix(1764680000+int64(*n), int64(*n)).UTC()))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("%s-%d", path, *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n))
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(t, s.Index(i), fmt.Sprintf("%s[%d]", path, i), n)
		}
		v.Set(s)
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				t.Fatalf("%s.%s is unexported: the state file cannot keep it", path, f.Name)
			}
			if tag := f.Tag.Get("json"); tag == "-" {
				t.Fatalf("%s.%s is left out of JSON: the state file cannot keep it", path, f.Name)
			}
			fill(t, v.Field(i), path+"."+f.Name, n)
		}
	default:
		t.Fatalf("%s: no filler for %s; teach fill about it", path, v.Type())
	}
}

// TestEveryProducerFieldSurvivesTheStateFile sets every field of what the
// ENI, links and bind steps record (eni.Attachment, link.Info, pci.Binding)
// to a non-zero value, writes it through the store and reads the file back:
// any field a producer sets that the file does not keep fails here.
func TestEveryProducerFieldSurvivesTheStateFile(t *testing.T) {
	var want Interface
	n := 0
	fill(t, reflect.ValueOf(&want).Elem(), "Interface", &n)
	want.Name = "n3"
	if n < 30 {
		t.Fatalf("filled only %d values; the record lost its producer types?", n)
	}
	root := hostfs.New(t.TempDir())
	s, err := Open(root, "run", time.Unix(100, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateInterface("n3", func(in *Interface) { *in = want }); err != nil {
		t.Fatal(err)
	}
	f, err := Read(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Interfaces["n3"]; !reflect.DeepEqual(got, want) {
		t.Errorf("the state file changed the record:\n got %+v\nwant %+v", got, want)
	}
	// And a second run starts from the same record.
	s2, err := Open(root, "run", time.Unix(200, 0))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s2.Interface("n3"); !reflect.DeepEqual(got, want) {
		t.Errorf("the next run's record differs:\n got %+v\nwant %+v", got, want)
	}
}

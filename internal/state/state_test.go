package state

import (
	"errors"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/hostfs"
)

func TestStoreKeepsInterfacesAcrossRuns(t *testing.T) {
	root := hostfs.New(t.TempDir())
	if _, err := Read(root); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read on empty root = %v", err)
	}
	s, err := Open(root, "run", time.Unix(100, 0))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, name := range []string{"n3", "n6", "n2"} {
		wg.Add(1)
		go func(i int, name string) {
			defer wg.Done()
			if err := s.UpdateInterface(name, func(in *Interface) { in.DeviceIndex = int32(i + 1) }); err != nil {
				t.Error(err)
			}
		}(i, name)
	}
	wg.Wait()
	_ = s.UpdateInterface("n3", func(in *Interface) { in.PCIAddress = "0000:00:06.0"; in.Driver = "vfio-pci" })
	_ = s.RecordStep(engine.Result{Name: "bind", Outcome: engine.Succeeded})
	if err := s.Finish(ResultSucceeded, nil, time.Unix(101, 0)); err != nil {
		t.Fatal(err)
	}

	f, err := Read(root)
	if err != nil {
		t.Fatal(err)
	}
	if f.Result != ResultSucceeded || f.Duration != time.Second || len(f.Steps) != 1 || len(f.Interfaces) != 3 {
		t.Errorf("file = %+v", f)
	}

	s2, _ := Open(root, "run", time.Unix(200, 0))
	in, ok := s2.Interface("n3")
	if !ok || in.PCIAddress != "0000:00:06.0" {
		t.Errorf("second run lost the BDF: %+v", in)
	}
	if got := s2.Interfaces(); got[0].Name != "n2" || got[2].Name != "n6" {
		t.Errorf("not sorted: %+v", got)
	}
	if len(s2.Snapshot().Steps) != 0 {
		t.Error("steps of the previous run carried over")
	}
}

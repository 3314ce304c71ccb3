package state

import (
	"errors"
	"fmt"
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
			if err := s.UpdateInterface(name, func(in *Interface) { in.ENI.DeviceIndex = int32(i + 1) }); err != nil {
				t.Error(err)
			}
		}(i, name)
	}
	wg.Wait()
	_ = s.UpdateInterface("n3", func(in *Interface) { in.Device.Device.Address = "0000:00:06.0"; in.Device.Device.Driver = "vfio-pci" })
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
	if !ok || in.Device.Device.Address != "0000:00:06.0" {
		t.Errorf("second run lost the BDF: %+v", in)
	}
	if err := s2.SetFact("k", "v"); err != nil {
		t.Fatal(err)
	}
	if f, _ := Read(root); len(f.Steps) != 0 || len(f.Interfaces) != 3 {
		t.Errorf("second run's file = %+v", f)
	}
}

// plan keeps its record in memory: it starts from the last run's knowledge
// and never writes the file.
func TestInMemoryStoreNeverWrites(t *testing.T) {
	root := hostfs.New(t.TempDir())
	s, err := Open(root, "run", time.Unix(100, 0))
	if err != nil {
		t.Fatal(err)
	}
	_ = s.UpdateInterface("n3", func(in *Interface) { in.Device.Device.Address = "0000:00:06.0" })
	_ = s.Finish(ResultSucceeded, nil, time.Unix(101, 0))
	before, _ := root.ReadFile(Path)

	plan, err := OpenInMemory(root, "plan", time.Unix(200, 0))
	if err != nil {
		t.Fatal(err)
	}
	if in, ok := plan.Interface("n3"); !ok || in.Device.Device.Address != "0000:00:06.0" {
		t.Errorf("plan does not know the last run's record: %+v", in)
	}
	_ = plan.UpdateInterface("n4", func(in *Interface) { in.Link.MAC = "0a:00:00:00:00:04" })
	_ = plan.RecordStep(engine.Result{Name: "bind", Outcome: engine.Failed})
	_ = plan.Finish(ResultFailed, errors.New("boom"), time.Unix(201, 0))
	if in, ok := plan.Interface("n4"); !ok || in.MAC() == "" {
		t.Error("plan's own update lost")
	}
	if after, _ := root.ReadFile(Path); string(after) != string(before) {
		t.Errorf("plan wrote the state file:\n%s", after)
	}
}

// Steps save concurrently. Every update that returned must be in the file on
// disk afterwards: a crash right then must not lose the MAC ↔ PCI record.
func TestConcurrentUpdatesAllReachTheFile(t *testing.T) {
	const writers, rounds = 32, 50
	for round := range rounds {
		root := hostfs.New(t.TempDir())
		s, err := Open(root, "run", time.Unix(100, 0))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("if%02d", i)
				if err := s.UpdateInterface(name, func(in *Interface) { in.ENI.DeviceIndex = int32(i + 1) }); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		f, err := Read(root)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Interfaces) != writers {
			t.Fatalf("round %d: the file holds %d of %d updates that all returned nil", round, len(f.Interfaces), writers)
		}
	}
}

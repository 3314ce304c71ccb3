// Package state is the record of nodeprep's last run, in /run/nodeprep. It
// holds what a re-run must still know after the facts have gone from the
// host, such as which PCI device was the ENI whose netdev vanished on unbind.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"reflect"
	"sync"
	"time"

	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/eni"
	"github.com/nodeprep/nodeprep/internal/hostfs"
	"github.com/nodeprep/nodeprep/internal/link"
	"github.com/nodeprep/nodeprep/internal/pci"
)

// Path is where the state file lives on the host. /run is tmpfs: after a
// reboot devices are back on their default drivers and are observed afresh.
const Path = "/run/nodeprep/state.json"

// Version of the file format. 2: each interface holds its producers'
// typed records (eni.Attachment, link.Info, pci.Binding).
const Version = 2

// Interface is what nodeprep knows about one configured interface: each
// part is its producer's own type, stored as is, so a fact the producer
// sets is never lost to a hand copy.
type Interface struct {
	Name string `json:"name"`
	// ENI is what the ENI step attached; zero for a NIC picked by MAC or
	// PCI address.
	ENI eni.Attachment `json:"eni,omitzero"`
	// Link is the netdev the links step readied.
	Link link.Info `json:"link,omitzero"`
	// Device is the PCI function the bind step bound (or found bound).
	Device pci.Binding `json:"device,omitzero"`
	// DeletedENIs are the ENIs runs created for the interface and deleted
	// when they gave up on them (eni.DeletedENIs of their errors), for the
	// next run's eni.Reconciler.DeletedENIs: EC2 replays a create's
	// ClientToken with the deleted ENI, which that run must not wait for.
	DeletedENIs []string `json:"deletedENIs,omitempty"`
}

// MAC is the interface's MAC: the ENI's, else the readied netdev's, else
// the bound device's.
func (i Interface) MAC() string {
	for _, m := range []string{i.ENI.MAC, i.Link.MAC, i.Device.MAC} {
		if m != "" {
			return m
		}
	}
	return ""
}

// IfName is the interface's netdev name, "" when it has none.
func (i Interface) IfName() string {
	if i.Link.IfName != "" {
		return i.Link.IfName
	}
	return i.Device.IfName
}

// File is the on-disk document.
type File struct {
	Version    int                  `json:"version"`
	Command    string               `json:"command"`
	InstanceID string               `json:"instanceID,omitempty"`
	Started    time.Time            `json:"started"`
	Finished   time.Time            `json:"finished,omitempty"`
	Duration   time.Duration        `json:"duration,omitempty"`
	Result     string               `json:"result"`
	Error      string               `json:"error,omitempty"`
	Steps      []engine.Result      `json:"steps"`
	Interfaces map[string]Interface `json:"interfaces"`
	// Facts are small per-step findings worth showing in `nodeprep status`.
	Facts map[string]string `json:"facts,omitempty"`
	// Limits are the network limits of LimitsInstanceID's type, as
	// eni.DescribeLimits read them. They are kept across runs: an
	// instance's type cannot change while it runs (a type change needs a
	// stop, and /run empties with it), so a re-run need not ask again.
	Limits           *eni.Limits `json:"limits,omitempty"`
	LimitsInstanceID string      `json:"limitsInstanceID,omitempty"`
}

// Results a run can end with.
const (
	ResultRunning   = "running"
	ResultSucceeded = "succeeded"
	ResultFailed    = "failed"
	ResultNoConfig  = "no-config"
	// ResultInvalidConfig is a run that refused its config before any step
	// ran (exit 2): the node is untouched, but `nodeprep status` must tell it
	// from a run that never happened, and say which field was wrong.
	ResultInvalidConfig = "invalid-config"
)

// Failed says whether the run ended without preparing the node: a step
// failed, or the config was refused.
func (f *File) Failed() bool {
	return f.Result == ResultFailed || f.Result == ResultInvalidConfig
}

// Store is the record of the current run. Every update is written through
// at once, so a crash leaves the newest knowledge on disk, and the newest
// state always wins.
type Store struct {
	root hostfs.Root
	// persist is false for `nodeprep plan`, which must leave the host as it
	// found it: the record lives in memory only.
	persist bool
	// mu guards file and version, the count of updates made to it.
	mu      sync.Mutex
	file    File
	version uint64
	// writeMu serialises writes; written is the version last on disk.
	writeMu sync.Mutex
	written uint64
}

// Open loads the state file, keeping the interface knowledge of the last
// run and starting a fresh run record that is written through to disk.
func Open(root hostfs.Root, command string, now time.Time) (*Store, error) {
	return open(root, command, now, true)
}

// OpenInMemory is Open for a run that must not write to the host: it starts
// from the last run's interface knowledge and keeps every update in memory.
func OpenInMemory(root hostfs.Root, command string, now time.Time) (*Store, error) {
	return open(root, command, now, false)
}

func open(root hostfs.Root, command string, now time.Time, persist bool) (*Store, error) {
	s := &Store{root: root, persist: persist}
	prev, err := Read(root)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	s.file = File{Version: Version, Command: command, Started: now, Result: ResultRunning, Interfaces: map[string]Interface{}, Facts: map[string]string{}}
	if prev != nil {
		for k, v := range prev.Interfaces {
			s.file.Interfaces[k] = v
		}
		s.file.Limits, s.file.LimitsInstanceID = prev.Limits, prev.LimitsInstanceID
	}
	return s, nil
}

// recoveryHint says how to get past a state file that cannot be read.
// Every run already copes without one (it is on tmpfs), finding its ENIs by
// their EC2 tags; without the hint each later run exits 1 on it.
const recoveryHint = "it records the last run and lives in /run, so a reboot loses it too: remove it and run again: rm " + Path + " && systemctl restart nodeprep"

// Read loads the state file as the last run left it.
func Read(root hostfs.Root) (*File, error) {
	data, err := root.ReadFile(Path)
	if err != nil {
		return nil, err
	}
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse %s: %w (%s)", Path, err, recoveryHint)
	}
	if f.Version != Version {
		return nil, fmt.Errorf("%s: version %d, this build reads %d (%s)", Path, f.Version, Version, recoveryHint)
	}
	return &f, nil
}

// Interface returns what is known of one interface.
func (s *Store) Interface(name string) (Interface, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.file.Interfaces[name]
	return in, ok
}

// UpdateInterface changes one interface's record and saves. An update that
// leaves the record as it was writes nothing.
func (s *Store) UpdateInterface(name string, update func(*Interface)) error {
	return s.update(func(f *File) bool {
		in := f.Interfaces[name]
		before := in
		in.Name = name
		update(&in)
		f.Interfaces[name] = in
		return !reflect.DeepEqual(in, before)
	})
}

// SetFact records a short finding and saves.
func (s *Store) SetFact(key, value string) error {
	return s.update(func(f *File) bool {
		changed := f.Facts[key] != value
		f.Facts[key] = value
		return changed
	})
}

// KnownLimits returns the network limits an earlier run on this instance
// asked EC2 for, or nil when none did (or for another instance or type).
func (s *Store) KnownLimits(instanceID, instanceType string) *eni.Limits {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.file.Limits
	if l == nil || instanceID == "" || s.file.LimitsInstanceID != instanceID || l.InstanceType != instanceType {
		return nil
	}
	c := *l
	c.ENIsPerCard = maps.Clone(l.ENIsPerCard)
	return &c
}

// SetLimits records the instance's network limits and saves.
func (s *Store) SetLimits(instanceID string, l eni.Limits) error {
	return s.update(func(f *File) bool {
		if f.Limits != nil && f.LimitsInstanceID == instanceID && reflect.DeepEqual(*f.Limits, l) {
			return false
		}
		f.Limits, f.LimitsInstanceID = &l, instanceID
		return true
	})
}

// SetInstanceID records the instance the run is on.
func (s *Store) SetInstanceID(id string) error {
	return s.update(func(f *File) bool {
		changed := f.InstanceID != id
		f.InstanceID = id
		return changed
	})
}

// RecordStep records a finished step and saves.
func (s *Store) RecordStep(r engine.Result) error {
	return s.update(func(f *File) bool {
		f.Steps = append(f.Steps, r)
		return true
	})
}

// Finish records how the run ended and saves.
func (s *Store) Finish(result string, runErr error, now time.Time) error {
	return s.update(func(f *File) bool {
		f.Result = result
		f.Finished = now
		f.Duration = now.Sub(f.Started)
		if runErr != nil {
			f.Error = runErr.Error()
		}
		return true
	})
}

// update applies change and, when it changed something, makes sure the
// file on disk holds it before returning. Writes go one at a time, each of a
// snapshot taken after the previous write: concurrent updates share one
// write, and no older snapshot can ever replace a newer one.
func (s *Store) update(change func(*File) bool) error {
	s.mu.Lock()
	if !change(&s.file) || !s.persist {
		s.mu.Unlock()
		return nil
	}
	s.version++
	mine := s.version
	s.mu.Unlock()

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.written >= mine {
		return nil // a later snapshot, holding this update too, is on disk
	}
	s.mu.Lock()
	data, err := json.MarshalIndent(s.file, "", "  ")
	version := s.version
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if _, err := s.root.WriteFile(Path, append(data, '\n'), 0o644); err != nil {
		return err
	}
	s.written = version
	return nil
}

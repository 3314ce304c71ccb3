// Package state is the record of nodeprep's last run, in /run/nodeprep. It
// holds what a re-run must still know after the facts have gone from the
// host, such as which PCI device was the ENI whose netdev vanished on unbind.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"sync"
	"time"

	"github.com/nodeprep/nodeprep/internal/engine"
	"github.com/nodeprep/nodeprep/internal/hostfs"
)

// Path is where the state file lives on the host. /run is tmpfs: after a
// reboot devices are back on their default drivers and are observed afresh.
const Path = "/run/nodeprep/state.json"

// Version of the file format.
const Version = 1

// Interface is what nodeprep knows about one configured interface.
type Interface struct {
	Name             string `json:"name"`
	ENIID            string `json:"eniID,omitempty"`
	AttachmentID     string `json:"attachmentID,omitempty"`
	MAC              string `json:"mac,omitempty"`
	IfName           string `json:"ifName,omitempty"`
	DeviceIndex      int32  `json:"deviceIndex,omitempty"`
	NetworkCardIndex int32  `json:"networkCardIndex,omitempty"`
	PrivateIP        string `json:"privateIP,omitempty"`
	SubnetCIDR       string `json:"subnetCIDR,omitempty"`
	// The pod addresses EC2 assigned to the ENI, as it last reported them.
	SecondaryIPs   []string `json:"secondaryIPs,omitempty"`
	IPv4Prefixes   []string `json:"ipv4Prefixes,omitempty"`
	IPv6Addresses  []string `json:"ipv6Addresses,omitempty"`
	IPv6Prefixes   []string `json:"ipv6Prefixes,omitempty"`
	IPv6SubnetCIDR string   `json:"ipv6SubnetCIDR,omitempty"`
	PCIAddress     string   `json:"pciAddress,omitempty"`
	// PCIID is the device's vendor:device (e.g. 1d0f:ec20), so a re-run
	// can check a recorded PCI address still holds the same device.
	PCIID          string `json:"pciID,omitempty"`
	Driver         string `json:"driver,omitempty"`
	OriginalDriver string `json:"originalDriver,omitempty"`
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
}

// Results a run can end with.
const (
	ResultRunning   = "running"
	ResultSucceeded = "succeeded"
	ResultFailed    = "failed"
	ResultNoConfig  = "no-config"
)

// Store is the state file, safe for concurrent steps. Every update is
// written through at once, so a crash leaves the newest knowledge on disk.
type Store struct {
	root hostfs.Root
	mu   sync.Mutex
	file File
}

// Open loads the state file, keeping the interface knowledge of the last
// run and starting a fresh run record.
func Open(root hostfs.Root, command string, now time.Time) (*Store, error) {
	s := &Store{root: root}
	prev, err := Read(root)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	s.file = File{Version: Version, Command: command, Started: now, Result: ResultRunning, Interfaces: map[string]Interface{}, Facts: map[string]string{}}
	if prev != nil {
		for k, v := range prev.Interfaces {
			s.file.Interfaces[k] = v
		}
	}
	return s, nil
}

// Read loads the state file as the last run left it.
func Read(root hostfs.Root) (*File, error) {
	data, err := root.ReadFile(Path)
	if err != nil {
		return nil, err
	}
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse %s: %w", Path, err)
	}
	if f.Version != Version {
		return nil, fmt.Errorf("%s: version %d, this build reads %d", Path, f.Version, Version)
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

// Interfaces returns every known interface, sorted by name.
func (s *Store) Interfaces() []Interface {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Interface, 0, len(s.file.Interfaces))
	for _, in := range s.file.Interfaces {
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// UpdateInterface changes one interface's record and saves.
func (s *Store) UpdateInterface(name string, update func(*Interface)) error {
	s.mu.Lock()
	in := s.file.Interfaces[name]
	in.Name = name
	update(&in)
	s.file.Interfaces[name] = in
	s.mu.Unlock()
	return s.Save()
}

// SetFact records a short finding and saves.
func (s *Store) SetFact(key, value string) error {
	s.mu.Lock()
	s.file.Facts[key] = value
	s.mu.Unlock()
	return s.Save()
}

// SetInstanceID records the instance the run is on.
func (s *Store) SetInstanceID(id string) {
	s.mu.Lock()
	s.file.InstanceID = id
	s.mu.Unlock()
}

// RecordStep records a finished step and saves.
func (s *Store) RecordStep(r engine.Result) error {
	s.mu.Lock()
	s.file.Steps = append(s.file.Steps, r)
	s.mu.Unlock()
	return s.Save()
}

// Finish records how the run ended and saves.
func (s *Store) Finish(result string, runErr error, now time.Time) error {
	s.mu.Lock()
	s.file.Result = result
	s.file.Finished = now
	s.file.Duration = now.Sub(s.file.Started)
	if runErr != nil {
		s.file.Error = runErr.Error()
	}
	s.mu.Unlock()
	return s.Save()
}

// Snapshot returns a copy of the current record.
func (s *Store) Snapshot() File {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.file
	f.Steps = append([]engine.Result(nil), s.file.Steps...)
	f.Interfaces = make(map[string]Interface, len(s.file.Interfaces))
	for k, v := range s.file.Interfaces {
		f.Interfaces[k] = v
	}
	f.Facts = make(map[string]string, len(s.file.Facts))
	for k, v := range s.file.Facts {
		f.Facts[k] = v
	}
	return f
}

// Save writes the state file atomically.
func (s *Store) Save() error {
	s.mu.Lock()
	data, err := json.MarshalIndent(s.file, "", "  ")
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.root.MkdirAll("/run/nodeprep", 0o755); err != nil {
		return err
	}
	_, err = s.root.WriteFile(Path, append(data, '\n'), 0o644)
	return err
}

package logging

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/journal"
)

type entry struct {
	msg  string
	pri  journal.Priority
	vars map[string]string
}

func TestJournalHandlerSendsStructuredFields(t *testing.T) {
	var got []entry
	h := NewJournalHandler(func(m string, p journal.Priority, v map[string]string) error {
		got = append(got, entry{m, p, v})
		return nil
	}, slog.LevelInfo)
	log := slog.New(h).With("step", "bind")
	log.Debug("hidden")
	log.Info("bound device", "pci_address", "0000:00:06.0", "eni_id", "eni-0123", "driver", "vfio-pci")
	log.WithGroup("ec2").Error("call failed", "code", "RequestLimitExceeded")

	if len(got) != 2 {
		t.Fatalf("%d entries, want 2", len(got))
	}
	e := got[0]
	for k, v := range map[string]string{"NODEPREP_STEP": "bind", "PCI_ADDRESS": "0000:00:06.0", "ENI_ID": "eni-0123", "NODEPREP_DRIVER": "vfio-pci", "SYSLOG_IDENTIFIER": "nodeprep"} {
		if e.vars[k] != v {
			t.Errorf("%s = %q, want %q", k, e.vars[k], v)
		}
	}
	if e.pri != journal.PriInfo || !strings.Contains(e.msg, "bound device") || !strings.Contains(e.msg, "pci_address=0000:00:06.0") {
		t.Errorf("entry = %+v", e)
	}
	if got[1].pri != journal.PriErr || got[1].vars["NODEPREP_EC2_CODE"] != "RequestLimitExceeded" || got[1].vars["NODEPREP_STEP"] != "bind" {
		t.Errorf("grouped entry = %+v", got[1])
	}
}

func TestFieldNameIsJournalSafe(t *testing.T) {
	for key, want := range map[string]string{"step": "NODEPREP_STEP", "subnet-id": "NODEPREP_SUBNET_ID", "_x.y": "NODEPREP__X_Y", "Duration": "NODEPREP_DURATION"} {
		if got := FieldName(key); got != want {
			t.Errorf("FieldName(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestTextFallback(t *testing.T) {
	var b strings.Builder
	off := false
	New(Options{Stderr: &b, Journal: &off}).Info("hello", "step", "config")
	if !strings.Contains(b.String(), "msg=hello step=config") || strings.Contains(b.String(), "time=") {
		t.Errorf("text = %q", b.String())
	}
}

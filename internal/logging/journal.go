// Package logging builds nodeprep's slog logger: structured journald
// entries under systemd, so `journalctl -u nodeprep NODEPREP_STEP=bind`
// filters by step, and plain text on stderr everywhere else.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"unicode"

	"github.com/coreos/go-systemd/v22/journal"
)

// JournalSender sends one entry; journal.Send satisfies it.
type JournalSender func(message string, priority journal.Priority, vars map[string]string) error

// JournalHandler is a slog.Handler that writes native journal entries.
type JournalHandler struct {
	send   JournalSender
	level  slog.Leveler
	attrs  []slog.Attr
	groups []string
	mu     *sync.Mutex
}

// NewJournalHandler returns a handler that sends through send.
func NewJournalHandler(send JournalSender, level slog.Leveler) *JournalHandler {
	return &JournalHandler{send: send, level: level, mu: &sync.Mutex{}}
}

func (h *JournalHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *JournalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), qualify(h.groups, attrs)...)
	return &c
}

func (h *JournalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.groups = append(append([]string(nil), h.groups...), name)
	return &c
}

func (h *JournalHandler) Handle(_ context.Context, r slog.Record) error {
	attrs := append([]slog.Attr(nil), h.attrs...)
	var own []slog.Attr
	r.Attrs(func(a slog.Attr) bool { own = append(own, a); return true })
	attrs = append(attrs, qualify(h.groups, own)...)

	vars := map[string]string{"SYSLOG_IDENTIFIER": "nodeprep"}
	var msg strings.Builder
	msg.WriteString(r.Message)
	for _, a := range flatten("", attrs) {
		vars[FieldName(a.Key)] = a.Value.String()
		// journalctl shows MESSAGE only, so the text carries the attributes too.
		fmt.Fprintf(&msg, " %s=%s", a.Key, quoteIfNeeded(a.Value.String()))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.send(msg.String(), priority(r.Level), vars)
}

// FieldName maps an attribute key to a journal field name: upper case,
// [A-Z0-9_] only, never starting with '_' (reserved for journald).
func FieldName(key string) string {
	if f, ok := wellKnownFields[key]; ok {
		return f
	}
	var b strings.Builder
	b.WriteString("NODEPREP_")
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(unicode.ToUpper(r))
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

func priority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= slog.LevelInfo:
		return journal.PriInfo
	default:
		return journal.PriDebug
	}
}

func qualify(groups []string, attrs []slog.Attr) []slog.Attr {
	if len(groups) == 0 {
		return attrs
	}
	return []slog.Attr{{Key: strings.Join(groups, "_"), Value: slog.GroupValue(attrs...)}}
}

func flatten(prefix string, attrs []slog.Attr) []slog.Attr {
	var out []slog.Attr
	for _, a := range attrs {
		a.Value = a.Value.Resolve()
		key := a.Key
		if prefix != "" {
			key = prefix + "_" + a.Key
		}
		if a.Value.Kind() == slog.KindGroup {
			out = append(out, flatten(key, a.Value.Group())...)
			continue
		}
		if a.Key == "" {
			continue
		}
		out = append(out, slog.Attr{Key: key, Value: a.Value})
	}
	return out
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"=") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// Options choose the logger.
type Options struct {
	Level slog.Leveler
	// Stderr is where text goes when not under journald.
	Stderr io.Writer
	// Journal forces (true) or forbids (false) journald; nil detects it.
	Journal *bool
}

// New returns the logger for this process: journald when stderr is connected
// to the journal (systemd sets JOURNAL_STREAM) and the socket is there.
func New(opts Options) *slog.Logger {
	if opts.Level == nil {
		opts.Level = slog.LevelInfo
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	useJournal := os.Getenv("JOURNAL_STREAM") != "" && journal.Enabled()
	if opts.Journal != nil {
		useJournal = *opts.Journal
	}
	if useJournal {
		return slog.New(NewJournalHandler(journal.Send, opts.Level))
	}
	return slog.New(slog.NewTextHandler(opts.Stderr, &slog.HandlerOptions{Level: opts.Level, ReplaceAttr: dropTime}))
}

// dropTime leaves timestamps to the terminal or CI log; they make demo and
// test output harder to read and diff.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

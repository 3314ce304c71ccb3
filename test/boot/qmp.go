package boot

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
)

// QMPError is an error QEMU answered to a QMP command.
type QMPError struct {
	Command string
	Class   string
	Desc    string
}

func (e *QMPError) Error() string {
	return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc)
}

// QMPEvent is an asynchronous QMP event, e.g. DEVICE_DELETED.
type QMPEvent struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

// QMP is a client of QEMU's machine protocol on a unix socket. Commands are
// serialised; events are delivered to waiters registered with WaitEvent.
type QMP struct {
	conn net.Conn
	cmds sync.Mutex // one command in flight: QMP answers in order

	mu      sync.Mutex
	replies chan qmpReply
	waiters []*eventWaiter
	readErr error
	done    chan struct{}
}

type qmpReply struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
}

type eventWaiter struct {
	match func(QMPEvent) bool
	ch    chan QMPEvent
}

// NewQMP takes a connection to QEMU's QMP monitor and leaves capabilities
// negotiation mode, so commands can be sent.
func NewQMP(ctx context.Context, conn net.Conn) (*QMP, error) {
	q := &QMP{conn: conn, replies: make(chan qmpReply, 1), done: make(chan struct{})}
	r := bufio.NewReader(conn)
	// The greeting comes first, before any command.
	if _, err := r.ReadBytes('\n'); err != nil {
		conn.Close()
		return nil, fmt.Errorf("qmp greeting: %w", err)
	}
	go q.read(r)
	if _, err := q.Execute(ctx, "qmp_capabilities", nil); err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

func (q *QMP) read(r *bufio.Reader) {
	defer close(q.done)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			q.mu.Lock()
			q.readErr = err
			q.mu.Unlock()
			return
		}
		var probe struct {
			Event *string `json:"event"`
		}
		if json.Unmarshal(line, &probe) == nil && probe.Event != nil {
			var ev QMPEvent
			if json.Unmarshal(line, &ev) == nil {
				q.dispatch(ev)
			}
			continue
		}
		var rep qmpReply
		if err := json.Unmarshal(line, &rep); err != nil {
			continue
		}
		q.replies <- rep
	}
}

func (q *QMP) dispatch(ev QMPEvent) {
	q.mu.Lock()
	defer q.mu.Unlock()
	kept := q.waiters[:0]
	for _, w := range q.waiters {
		if w.match(ev) {
			w.ch <- ev
			continue
		}
		kept = append(kept, w)
	}
	q.waiters = kept
}

// Execute runs one QMP command and returns its "return" value.
func (q *QMP) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	q.cmds.Lock()
	defer q.cmds.Unlock()
	msg := map[string]any{"execute": command}
	if args != nil {
		msg["arguments"] = args
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: write: %w", command, err)
	}
	select {
	case rep := <-q.replies:
		if rep.Error != nil {
			return nil, &QMPError{Command: command, Class: rep.Error.Class, Desc: rep.Error.Desc}
		}
		return rep.Return, nil
	case <-q.done:
		q.mu.Lock()
		defer q.mu.Unlock()
		return nil, fmt.Errorf("qmp %s: connection closed: %w", command, q.readErr)
	case <-ctx.Done():
		return nil, fmt.Errorf("qmp %s: %w", command, ctx.Err())
	}
}

// ExpectEvent registers interest in an event before the command that causes
// it is sent (so it cannot be missed) and returns a function that waits for it.
func (q *QMP) ExpectEvent(match func(QMPEvent) bool) func(context.Context) (QMPEvent, error) {
	w := &eventWaiter{match: match, ch: make(chan QMPEvent, 1)}
	q.mu.Lock()
	q.waiters = append(q.waiters, w)
	q.mu.Unlock()
	return func(ctx context.Context) (QMPEvent, error) {
		select {
		case ev := <-w.ch:
			return ev, nil
		case <-q.done:
			return QMPEvent{}, errors.New("qmp: connection closed while waiting for an event")
		case <-ctx.Done():
			return QMPEvent{}, fmt.Errorf("qmp: waiting for event: %w", ctx.Err())
		}
	}
}

// Close closes the connection.
func (q *QMP) Close() error { return q.conn.Close() }

package server

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// capListener admits at most max connections at once (an Admitter), as
// the daemon's per-source cap does.
type capListener struct {
	net.Listener
	mu       sync.Mutex
	open     int
	max      int
	refused  int
	released int
}

func (l *capListener) Unwrap() net.Listener { return l.Listener }

func (l *capListener) Admit(a netip.Addr) (func(), bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open >= l.max {
		l.refused++
		return nil, false
	}
	l.open++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.open--
			l.released++
			l.mu.Unlock()
		})
	}, true
}

func (l *capListener) counts() (open, refused, released int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, l.refused, l.released
}

// The event-loop engine accepts TCP connections from the listener below
// its wrappers (accept4, no runtime poller registration per connection),
// and the wrappers still decide: a connection the Admitter refuses is
// reset, a slot is released once its connection closes, and connections
// their peer closed before sending anything are closed at accept.
func TestRawAcceptAdmitter(t *testing.T) {
	h := &orderHandler{}
	s := New(h, Options{StreamEngine: EngineEpoll, StreamLoops: 1, Log: quietLog()})
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &capListener{Listener: ln, max: 2}
	s.Start(&Socket{Netid: "tcp", Listener: cl})
	addr := ln.Addr().String()
	call := func(c net.Conn) (string, error) {
		c.SetDeadline(time.Now().Add(ioTimeout))
		if _, err := c.Write(record("q")); err != nil {
			return "", err
		}
		return readRecordErr(c)
	}
	a, b := dial(t, "tcp", addr), dial(t, "tcp", addr)
	for _, c := range []net.Conn{a, b} {
		if r, err := call(c); err != nil || r != "q" {
			t.Fatalf("admitted connection: %q, %v", r, err)
		}
	}
	third := dial(t, "tcp", addr)
	if r, err := call(third); err == nil {
		t.Errorf("third connection over the cap answered %q", r)
	}
	if _, refused, _ := cl.counts(); refused != 1 {
		t.Errorf("refused %d, want 1", refused)
	}
	a.Close()
	waitFor(t, "a's slot released", func() bool { _, _, rel := cl.counts(); return rel == 1 })
	d := dial(t, "tcp", addr)
	if r, err := call(d); err != nil || r != "q" {
		t.Errorf("connection after a release: %q, %v", r, err)
	}
	b.Close()
	d.Close()
	third.Close()
	waitFor(t, "every slot released", func() bool { open, _, _ := cl.counts(); return open == 0 })
	cl.mu.Lock()
	cl.max = 100 // the churn below is not about the cap
	cl.mu.Unlock()
	before := s.Stat.ClosedAtAccept.Load()
	for range 20 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	// Most are closed at accept (a peer's close may land after the peek:
	// those are admitted, served nothing and released).
	waitFor(t, "connect-and-close connections closed at accept", func() bool {
		return s.Stat.ClosedAtAccept.Load()-before >= 10
	})
	waitFor(t, "no slot left open", func() bool { open, _, _ := cl.counts(); return open == 0 })
}

// readRecordErr reads one reply record, returning an error instead of
// failing the test (a reset connection).
func readRecordErr(c net.Conn) (string, error) {
	var mark [4]byte
	if _, err := io.ReadFull(c, mark[:]); err != nil {
		return "", err
	}
	b := make([]byte, binary.BigEndian.Uint32(mark[:])&(1<<31-1))
	if _, err := io.ReadFull(c, b); err != nil {
		return "", err
	}
	return string(b), nil
}

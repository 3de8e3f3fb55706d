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
	addr := ln.Addr().String()
	// Connections their peer closed before the server accepts them (the
	// kernel completed the handshakes and took the FINs): each is closed
	// at accept, none reaches a loop or the Admitter.
	const churn = 20
	for range churn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	time.Sleep(50 * time.Millisecond) // the FINs' processing may be deferred to ksoftirqd
	cl := &capListener{Listener: ln, max: churn}
	s.Start(&Socket{Netid: "tcp", Listener: cl})
	waitFor(t, "every churned connection accepted", func() bool { return s.Stat.Accepted.Load() == churn })
	waitFor(t, "no slot held by a churned connection", func() bool { open, _, _ := cl.counts(); return open == 0 })
	if n := s.Stat.ClosedAtAccept.Load(); n < churn/2 {
		t.Errorf("%d of %d connections closed before the server accepted them were closed at accept", n, churn)
	}
	if _, refused, _ := cl.counts(); refused != 0 {
		t.Errorf("%d churned connections refused", refused)
	}
	cl.mu.Lock()
	cl.max = 2
	cl.mu.Unlock()
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
	// Reset at once: the reset may even reach the dial.
	third, err := net.Dial("tcp", addr)
	if err == nil {
		defer third.Close()
		if r, err := call(third); err == nil {
			t.Errorf("third connection over the cap answered %q", r)
		}
	}
	waitFor(t, "the third connection refused", func() bool { _, refused, _ := cl.counts(); return refused >= 1 })
	if _, refused, _ := cl.counts(); refused != 1 {
		t.Errorf("refused %d, want 1", refused)
	}
	_, _, rel0 := cl.counts()
	a.Close()
	waitFor(t, "a's slot released", func() bool { _, _, rel := cl.counts(); return rel == rel0+1 })
	d := dial(t, "tcp", addr)
	if r, err := call(d); err != nil || r != "q" {
		t.Errorf("connection after a release: %q, %v", r, err)
	}
	b.Close()
	d.Close()
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

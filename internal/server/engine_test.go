package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/rpc"
)

// engines are the stream engines every stream behaviour test runs on.
var engines = []string{EngineGoroutine, EngineEpoll}

func eachEngine(t *testing.T, f func(t *testing.T, engine string)) {
	for _, e := range engines {
		t.Run(e, func(t *testing.T) { f(t, e) })
	}
}

// waitFor polls cond; the deadline only guards against a hung test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(ioTimeout); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: still not true after %v", what, ioTimeout)
		}
	}
}

// Pipelined records sent one byte per write: marks and bodies split at
// every offset are reassembled, and the replies come in order.
func TestStreamByteByByte(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		s, _ := newServer(t, Options{StreamEngine: engine})
		addr := startStream(t, s, "tcp", "127.0.0.1:0")
		c := dial(t, "tcp", addr)
		c.(*net.TCPConn).SetNoDelay(true)
		var all []byte
		all = binary.BigEndian.AppendUint32(all, 2) // not last
		all = append(all, "ab"...)
		all = binary.BigEndian.AppendUint32(all, 1<<31|2) // last
		all = append(all, "cd"...)
		all = append(all, record("efg")...)
		for i := range all {
			if _, err := c.Write(all[i : i+1]); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range []string{"abcd", "efg"} {
			if got := readRecord(t, c); !strings.HasSuffix(got, "|-1|"+m) {
				t.Errorf("got %q, want suffix %q", got, m)
			}
		}
	})
}

// An empty record and a record of more than rpc.MaxFragments fragments
// close the connection and count as errors (the stream position is lost).
func TestStreamBadRecordsClose(t *testing.T) {
	empty := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 0), 1<<31)
	var many []byte
	for range rpc.MaxFragments + 1 {
		many = binary.BigEndian.AppendUint32(many, 0) // zero-length, not last
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{{"empty", empty}, {"fragments", many}} {
		eachEngine(t, func(t *testing.T, engine string) {
			s, h := newServer(t, Options{StreamEngine: engine})
			addr := startStream(t, s, "tcp", "127.0.0.1:0")
			c := dial(t, "tcp", addr)
			c.Write(tc.b)
			expectClosed(t, c)
			waitFor(t, "error counted", func() bool { return s.Stat.Errors.Load() == 1 })
			if n := h.calls.Load(); n != 0 {
				t.Errorf("%s: handler called %d times", tc.name, n)
			}
		})
	}
}

// A reply the client does not read is abandoned after WriteTimeout: the
// connection is closed and leaves the count.
func TestStreamWriteTimeout(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		tail := bytes.Repeat([]byte("z"), 16<<20) // more than both socket buffers
		s := New(&tailHandler{tail: tail}, Options{StreamEngine: engine, Log: quietLog(),
			WriteTimeout: 20 * time.Millisecond})
		t.Cleanup(func() { s.Shutdown(t.Context()) })
		addr := startStream(t, s, "tcp", "127.0.0.1:0")
		c := dial(t, "tcp", addr)
		c.Write(record("big"))
		waitFor(t, "connection accepted", func() bool { return s.Stat.Records.Load() == 1 })
		waitFor(t, "connection closed", func() bool { return s.Conns() == 0 })
	})
}

// Shutdown waits for a reply being written; when its context ends first,
// every connection is closed and Shutdown returns the context's error.
func TestStreamShutdownOutOfTime(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		tail := bytes.Repeat([]byte("z"), 16<<20)
		s := New(&tailHandler{tail: tail}, Options{StreamEngine: engine, Log: quietLog()})
		addr := startStream(t, s, "tcp", "127.0.0.1:0")
		c := dial(t, "tcp", addr)
		c.Write(record("big"))
		waitFor(t, "call served", func() bool { return s.Stat.Records.Load() == 1 })
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("shutdown = %v, want the context's deadline", err)
		}
		if n := s.Conns(); n != 0 {
			t.Errorf("%d connections left", n)
		}
	})
}

// slotListener hands out connections that count their Close calls, as
// the guard's per-source cap does; with NetConn they expose the socket.
type slotListener struct {
	net.Listener
	netConn bool
	closes  atomic.Int64
}

type slotConn struct {
	*net.TCPConn
	l *slotListener
}

func (c *slotConn) Close() error { c.l.closes.Add(1); return c.TCPConn.Close() }

type slotNetConn struct{ slotConn }

func (c *slotNetConn) NetConn() net.Conn { return c.TCPConn }

// hidden hides the socket (no syscall.Conn, no NetConn).
type hidden struct{ net.Conn }

func (l *slotListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	sc := slotConn{TCPConn: nc.(*net.TCPConn), l: l}
	if l.netConn {
		return &slotNetConn{sc}, nil
	}
	return hidden{&sc}, nil
}

// A wrapped accepted connection keeps its slot while it is served and
// gives it back once when it ends, whether the epoll engine can take its
// socket (NetConn) or must leave it to a goroutine (a hidden socket).
func TestStreamWrappedConnClosedOnce(t *testing.T) {
	for _, netConn := range []bool{true, false} {
		eachEngine(t, func(t *testing.T, engine string) {
			s, _ := newServer(t, Options{StreamEngine: engine})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			sl := &slotListener{Listener: ln, netConn: netConn}
			s.Start(&Socket{Netid: "tcp", Addr: ln.Addr().String(), Listener: sl})
			c := dial(t, "tcp", ln.Addr().String())
			for _, m := range []string{"a", "b"} {
				c.Write(record(m))
				if got := readRecord(t, c); !strings.HasSuffix(got, "|"+m) {
					t.Errorf("got %q", got)
				}
			}
			if n := sl.closes.Load(); n != 0 {
				t.Errorf("NetConn %v: wrapper closed %d times while served", netConn, n)
			}
			c.Close()
			waitFor(t, "connection gone", func() bool { return s.Conns() == 0 })
			// The goroutine engine forgets the connection, then closes it.
			waitFor(t, "wrapper closed", func() bool { return sl.closes.Load() > 0 })
			if n := sl.closes.Load(); n != 1 {
				t.Errorf("NetConn %v: wrapper closed %d times, want 1", netConn, n)
			}
		})
	}
}

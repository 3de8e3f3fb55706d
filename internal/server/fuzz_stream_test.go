package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/access"
)

// Fuzzed stream sessions: bounds of one input.
const (
	fuzzConns    = 4         // client connections open at once
	fuzzOps      = 48        // operations per input
	fuzzBatch    = 40        // records per pipelined write
	fuzzHeld     = 1 << 20   // MaxHeldBytes of the fuzzed server
	fuzzMidTail  = 256 << 10 // the shared tail (one backing array for every call), more than a socket takes
	fuzzBigTail  = 384 << 10 // a fresh tail per call (a new table version each time)
	fuzzReadWait = 5 * time.Second
)

// fuzzHandler answers a request [conn, seq hi, seq lo, kind] with the
// request and a tail by kind (0 none, 1 shared, 2 fresh), logging the
// order of calls.
type fuzzHandler struct {
	shared []byte
	mu     sync.Mutex
	log    [][2]int // (conn, seq) in the order served
	served [256]int // calls per conn
}

func (h *fuzzHandler) ServeRPC(out, req []byte, c *access.Caller) ([]byte, bool) {
	r, t, ok := h.ServeRPCTail(out, req, c)
	return append(r, t...), ok
}

func (h *fuzzHandler) ServeRPCTail(out, req []byte, c *access.Caller) ([]byte, []byte, bool) {
	if len(req) != 4 {
		return append(out, req...), nil, true
	}
	h.mu.Lock()
	h.log = append(h.log, [2]int{int(req[0]), int(req[1])<<8 | int(req[2])})
	h.served[req[0]]++
	h.mu.Unlock()
	return append(out, req...), fuzzTail(h, req[3]), true
}

func fuzzTail(h *fuzzHandler, kind byte) []byte {
	switch kind % 3 {
	case 1:
		return h.shared
	case 2:
		return bytes.Repeat([]byte{'f'}, fuzzBigTail)
	}
	return nil
}

func tailLen(kind byte) int {
	return [3]int{0, fuzzMidTail, fuzzBigTail}[kind%3]
}

// fuzzClient is one client connection and what it expects.
type fuzzClient struct {
	id      int
	c       net.Conn
	sent    int    // complete records written
	kinds   []byte // kind of each record, by seq
	got     int    // replies read
	pending []byte // the rest of a record split across writes
	gone    bool   // closed by us, or found closed by the server
}

// probe: once seq of conn had been written (log length at), no other
// connection may be served more than two turns before it; every record of
// conn before it had been served and few replies were unread.
type probe struct{ conn, seq, at int }

// FuzzStreamEngine drives a real Server over AF_UNIX connections with a
// sequence of operations decoded from the input: connects, pipelined
// batches, records split across writes, multi-fragment records, closes and
// reads that come late or never. Invariants: held bytes never exceed the
// budget and return to zero; every complete record on a connection the
// server did not shed is answered, in order, with the right reply; a
// connection is closed by the server only when something was shed; on
// the epoll engine a connection that sends while others pipeline is
// served before any other gets more than two turns (2 × RecordsPerWakeup
// calls); after Shutdown no goroutine or descriptor is left.
func FuzzStreamEngine(f *testing.F) {
	// Seeds, after the header byte (bit 0: goroutine engine; bits 1-3:
	// RecordsPerWakeup-1), as operations: 0 connect; 1 pick n kind: a
	// batch of n+1 records; 2 pick cut kind: a record split; 3 pick kind:
	// a multi-fragment record; 4 pick: hang up; 5 pick: read the replies.
	pipelines := []byte{0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 5, 0, 5, 1,
		1, 0, 39, 0, 1, 0, 39, 0, 1, 0, 39, 0, 1, 1, 0, 0, 1, 0, 39, 0, 1, 1, 3, 0, 5, 1, 5, 0}
	pinners := []byte{0, 0, 0, 0, 1, 0, 0, 2, 1, 1, 0, 2, 1, 2, 0, 2, 1, 3, 0, 2,
		5, 0, 5, 1, 0, 1, 0, 3, 1, 1, 0, 5, 0, 5, 1, 5, 2}
	pieces := []byte{0, 0, 2, 0, 3, 0, 3, 1, 1, 2, 1, 1, 1, 5, 0, 2, 0, 7, 2, 5, 0,
		3, 1, 0, 1, 1, 2, 0, 4, 0, 5, 0, 1, 0, 3, 0, 5, 0}
	for _, seed := range [][]byte{pipelines, pinners, pieces} {
		for _, header := range []byte{0x00, 0x01, 0x02, 0x0f} {
			f.Add(append([]byte{header}, seed...))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		fuzzStream(t, data)
	})
}

func fuzzStream(t *testing.T, data []byte) {
	engine := EngineEpoll
	if data[0]&1 != 0 {
		engine = EngineGoroutine
	}
	budget := 1 + int(data[0]>>1)%8
	data = data[1:]
	goroutines, fds := runtime.NumGoroutine(), openFDs()

	h := &fuzzHandler{shared: bytes.Repeat([]byte{'s'}, fuzzMidTail)}
	s := New(h, Options{StreamEngine: engine, StreamLoops: 1, RecordsPerWakeup: budget,
		MaxHeldBytes: fuzzHeld, Log: quietLog()})
	path := filepath.Join(t.TempDir(), "s")
	startStream(t, s, "local", path)

	var clients []*fuzzClient
	var probes []probe
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	pick := func() *fuzzClient {
		l := live(clients)
		if len(l) == 0 {
			return nil
		}
		return l[int(next())%len(l)]
	}
	// write sends b on c after what is pending; a server-closed
	// connection is accepted only when something was shed.
	write := func(c *fuzzClient, b []byte) {
		b = append(c.pending, b...)
		c.pending = nil
		c.c.SetWriteDeadline(time.Now().Add(fuzzReadWait))
		if _, err := c.c.Write(b); err != nil {
			serverClosed(t, s, c, err)
		}
	}
	newRecord := func(c *fuzzClient, kind byte) []byte {
		seq := c.sent
		c.sent++
		c.kinds = append(c.kinds, kind%3)
		return []byte{byte(c.id), byte(seq >> 8), byte(seq), kind % 3}
	}
	for op := 0; op < fuzzOps && len(data) > 0; op++ {
		switch next() % 6 {
		case 0: // connect
			if len(clients) >= 64 || len(live(clients)) >= fuzzConns {
				continue
			}
			nc, err := net.Dial("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			clients = append(clients, &fuzzClient{id: len(clients), c: nc})
		case 1: // a pipelined batch of records in one write
			c := pick()
			n, kind := 1+int(next())%fuzzBatch, next()
			if c == nil {
				continue
			}
			// A probe of fairness: c is known to the loop (served
			// before), has nothing unserved and cannot block on output.
			h.mu.Lock()
			idle := c.sent > 0 && h.served[c.id] == c.sent && len(c.pending) == 0
			h.mu.Unlock()
			probing := idle && c.sent-c.got < 32 && allSmall(c) && kind%3 == 0
			seq := c.sent
			var b []byte
			for range n {
				b = append(b, record(string(newRecord(c, kind)))...)
			}
			write(c, b)
			if probing && !c.gone {
				h.mu.Lock()
				probes = append(probes, probe{c.id, seq, len(h.log)}) // counted from after the write
				h.mu.Unlock()
			}
		case 2: // a record split across this write and the next
			c := pick()
			cut := int(next()) % 8
			if c == nil {
				continue
			}
			r := record(string(newRecord(c, next())))
			write(c, r[:cut])
			c.pending = append([]byte(nil), r[cut:]...)
		case 3: // a multi-fragment record
			c := pick()
			if c == nil {
				continue
			}
			body := newRecord(c, next())
			var b []byte
			for i, part := range [][]byte{body[:1], body[1:1], body[1:3], body[3:]} {
				m := uint32(len(part))
				if i == 3 {
					m |= 1 << 31
				}
				b = append(binary.BigEndian.AppendUint32(b, m), part...)
			}
			write(c, b)
		case 4: // the client hangs up
			if c := pick(); c != nil {
				c.c.Close()
				c.gone = true
			}
		case 5: // read every reply due so far (late readers until then)
			if c := pick(); c != nil {
				n := c.sent
				if len(c.pending) > 0 {
					n-- // the split record is not complete yet
				}
				readReplies(t, s, c, n)
			}
		}
	}
	// Every live connection finishes its records and gets every reply.
	for _, c := range clients {
		if !c.gone && len(c.pending) > 0 {
			write(c, nil)
		}
	}
	for _, c := range clients {
		if !c.gone {
			readReplies(t, s, c, c.sent)
		}
	}
	t.Logf("%s budget %d: %d clients, %d records, %d shed, held peak %d, %d probes",
		engine, budget, len(clients), s.Stat.Records.Load(), s.Stat.Shed.Load(), s.Stat.HeldPeak.Load(), len(probes))
	if p := s.Stat.HeldPeak.Load(); p > fuzzHeld {
		t.Errorf("held bytes peaked at %d, budget %d", p, fuzzHeld)
	}
	if engine == EngineEpoll {
		checkProbes(t, h, probes, budget)
	}
	for _, c := range clients {
		c.c.Close()
	}
	waitFor(t, "connections closed", func() bool { return s.Conns() == 0 })
	if n := s.Stat.HeldBytes.Load(); n != 0 {
		t.Errorf("%d bytes still held with every connection closed", n)
	}
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "goroutines and descriptors released", func() bool {
		return runtime.NumGoroutine() <= goroutines && openFDs() <= fds
	})
}

func live(cs []*fuzzClient) []*fuzzClient {
	var l []*fuzzClient
	for _, c := range cs {
		if !c.gone {
			l = append(l, c)
		}
	}
	return l
}

// allSmall: no reply due on c carries a tail (so none can fill the socket).
func allSmall(c *fuzzClient) bool {
	for _, k := range c.kinds[c.got:] {
		if k != 0 {
			return false
		}
	}
	return true
}

// serverClosed accepts a connection the server closed only when the
// held-bytes budget shed something.
func serverClosed(t *testing.T, s *Server, c *fuzzClient, err error) {
	t.Helper()
	c.gone = true
	c.c.Close()
	if s.Stat.Shed.Load() == 0 {
		t.Fatalf("conn %d closed by the server with nothing shed: %v", c.id, err)
	}
}

// readReplies reads c's replies up to seq n, in order, each the request
// and its tail.
func readReplies(t *testing.T, s *Server, c *fuzzClient, n int) {
	t.Helper()
	c.c.SetReadDeadline(time.Now().Add(fuzzReadWait))
	for c.got < n {
		var mark [4]byte
		if _, err := io.ReadFull(c.c, mark[:]); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("conn %d: reply %d of %d not received", c.id, c.got, n)
			}
			serverClosed(t, s, c, err)
			return
		}
		m := binary.BigEndian.Uint32(mark[:])
		want := 4 + tailLen(c.kinds[c.got])
		if m != 1<<31|uint32(want) {
			t.Fatalf("conn %d reply %d: mark %08x, want a last fragment of %d", c.id, c.got, m, want)
		}
		b := make([]byte, want)
		if _, err := io.ReadFull(c.c, b); err != nil {
			serverClosed(t, s, c, err)
			return
		}
		if b[0] != byte(c.id) || int(b[1])<<8|int(b[2]) != c.got {
			t.Fatalf("conn %d: reply %d is for conn %d seq %d (out of order)", c.id, c.got, b[0], int(b[1])<<8|int(b[2]))
		}
		c.got++
	}
}

// checkProbes: between a probe's write and its service, no other
// connection was served more than two turns.
func checkProbes(t *testing.T, h *fuzzHandler, probes []probe, budget int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range probes {
		end := -1
		for i := p.at; i < len(h.log); i++ {
			if h.log[i] == [2]int{p.conn, p.seq} {
				end = i
				break
			}
		}
		if end < 0 {
			continue // shed before it was served
		}
		var others [256]int
		for _, e := range h.log[p.at:end] {
			if e[0] != p.conn {
				if others[e[0]]++; others[e[0]] > 2*budget {
					t.Fatalf("conn %d seq %d waited for %d calls of conn %d (budget %d per turn)",
						p.conn, p.seq, others[e[0]], e[0], budget)
				}
			}
		}
	}
}

func openFDs() int {
	es, _ := os.ReadDir("/proc/self/fd")
	return len(es)
}

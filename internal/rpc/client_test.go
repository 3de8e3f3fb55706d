package rpc

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/xdr"
)

// behaviour decides, for the n-th datagram or record a test server gets
// (from 1), what to send back: nothing, or some replies in order.
type behaviour func(n int, h *CallHeader, args []byte) [][]byte

// echo answers SUCCESS with the arguments as results; prog 7 is unavailable.
func echo(n int, h *CallHeader, args []byte) [][]byte {
	if h.Prog == 7 {
		return [][]byte{AppendAccepted(nil, h.XID, ProgUnavail)}
	}
	return [][]byte{append(AppendAccepted(nil, h.XID, Success), args...)}
}

type server struct {
	addr  string
	calls atomic.Int32
	xids  sync.Map // xid -> copies received
}

func (s *server) handle(msg []byte, b behaviour) [][]byte {
	var h CallHeader
	args, err := ParseCall(msg, &h)
	if err != nil {
		return nil
	}
	n := int(s.calls.Add(1))
	c, _ := s.xids.LoadOrStore(h.XID, new(atomic.Int32))
	c.(*atomic.Int32).Add(1)
	return b(n, &h, args)
}

func udpServer(t *testing.T, b behaviour) *server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	s := &server{addr: pc.LocalAddr().String()}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			for _, r := range s.handle(buf[:n], b) {
				pc.WriteTo(r, from)
			}
		}
	}()
	return s
}

func streamServer(t *testing.T, network, addr string, b behaviour) *server {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s := &server{addr: ln.Addr().String()}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				rr := NewRecordReader(conn, MaxRecord)
				for {
					msg, err := rr.Next()
					if err != nil {
						return
					}
					for _, r := range s.handle(msg, b) {
						out, start := BeginRecord(nil)
						out = append(out, r...)
						EndRecord(out, start)
						conn.Write(out)
					}
				}
			}()
		}
	}()
	return s
}

func dial(t *testing.T, network, addr string, opt ClientOptions) *Client {
	t.Helper()
	c, err := Dial(network, addr, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestClientEcho(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "rpc.sock")
	for _, tc := range []struct{ network, addr string }{
		{"udp", udpServer(t, echo).addr},
		{"tcp", streamServer(t, "tcp", "127.0.0.1:0", echo).addr},
		{"unix", streamServer(t, "unix", sock, echo).addr},
	} {
		c := dial(t, tc.network, tc.addr, ClientOptions{})
		cred := (&AuthSysParams{MachineName: []byte("host"), UID: 1000, NGIDs: 1}).OpaqueAuth()
		for i := range 3 {
			args := xdr.AppendUint32(xdr.AppendString(nil, "hello"), uint32(i))
			res, err := c.Call(context.Background(), 100000, 2, 3, &cred, args)
			if err != nil || string(res) != string(args) {
				t.Fatalf("%s call %d: %x, %v", tc.network, i, res, err)
			}
		}
		_, err := c.Call(context.Background(), 7, 1, 0, nil, nil)
		var re *ReplyError
		if !errors.As(err, &re) || re.AcceptStat != ProgUnavail {
			t.Fatalf("%s: %v, want PROG_UNAVAIL", tc.network, err)
		}
		// CallAppend appends after what dst holds.
		res, err := c.CallAppend(context.Background(), []byte("x"), 1, 1, 1, nil, []byte{1, 2, 3, 4})
		if err != nil || string(res) != "x\x01\x02\x03\x04" {
			t.Fatalf("%s: CallAppend %q %v", tc.network, res, err)
		}
	}
}

// The server drops the first two copies of each call; the client resends
// the same XID until one is answered.
func TestClientUDPRetransmit(t *testing.T) {
	var mu sync.Mutex
	seen := map[uint32]int{}
	s := udpServer(t, func(n int, h *CallHeader, args []byte) [][]byte {
		mu.Lock()
		defer mu.Unlock()
		seen[h.XID]++
		if seen[h.XID] < 3 {
			return nil
		}
		return echo(n, h, args)
	})
	c := dial(t, "udp", s.addr, ClientOptions{Retransmit: 10 * time.Millisecond, Timeout: time.Minute})
	res, err := c.Call(context.Background(), 1, 1, 1, nil, []byte("abcd"))
	if err != nil || string(res) != "abcd" {
		t.Fatalf("%q %v", res, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 {
		t.Fatalf("resends used %d different XIDs", len(seen))
	}
	for _, n := range seen {
		if n != 3 {
			t.Fatalf("server saw %d copies, want 3", n)
		}
	}
}

// Replies with the wrong XID, a garbage datagram and a CALL are ignored;
// the right reply after them is taken.
func TestClientIgnoresWrongXID(t *testing.T) {
	wrong := func(n int, h *CallHeader, args []byte) [][]byte {
		return [][]byte{
			append(AppendAccepted(nil, h.XID+1, Success), "nope"...),
			AppendAuthError(nil, h.XID-1, AuthTooWeak),
			{1, 2},
			AppendCall(nil, h.XID, 1, 1, 1, nil),
			append(AppendAccepted(nil, h.XID, Success), "good"...),
		}
	}
	for _, s := range []struct {
		network string
		s       *server
	}{{"udp", udpServer(t, wrong)}, {"tcp", streamServer(t, "tcp", "127.0.0.1:0", func(n int, h *CallHeader, args []byte) [][]byte {
		r := wrong(n, h, args)
		return [][]byte{r[0], r[1], r[4]} // a stream has no stray datagrams
	})}} {
		c := dial(t, s.network, s.s.addr, ClientOptions{Retransmit: time.Minute, Timeout: time.Minute})
		for range 2 {
			res, err := c.Call(context.Background(), 1, 1, 1, nil, nil)
			if err != nil || string(res) != "good" {
				t.Fatalf("%s: %q %v", s.network, res, err)
			}
		}
	}
}

func silent(int, *CallHeader, []byte) [][]byte { return nil }

func TestClientTimeout(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		var s *server
		if network == "udp" {
			s = udpServer(t, silent)
		} else {
			s = streamServer(t, "tcp", "127.0.0.1:0", silent)
		}
		c := dial(t, network, s.addr, ClientOptions{Retransmit: 5 * time.Millisecond, Timeout: 50 * time.Millisecond})
		_, err := c.Call(context.Background(), 1, 1, 1, nil, nil)
		if err != ErrTimeout || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s: %v, want ErrTimeout", network, err)
		}
		if network == "tcp" {
			if _, err := c.Call(context.Background(), 1, 1, 1, nil, nil); err != ErrConnBroken {
				t.Errorf("tcp after a timeout: %v, want ErrConnBroken", err)
			}
		}
	}
}

func TestClientContext(t *testing.T) {
	s := udpServer(t, silent)
	c := dial(t, "udp", s.addr, ClientOptions{Retransmit: time.Hour, Timeout: time.Hour})

	// A context deadline shorter than Timeout wins.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := c.Call(ctx, 1, 1, 1, nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}

	// Cancellation unblocks a pending read.
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		for s.calls.Load() < 2 { // the call above, then this one
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if _, err := c.Call(ctx, 1, 1, 1, nil, nil); err != context.Canceled {
		t.Fatalf("cancel: %v", err)
	}
	// Already cancelled: nothing is sent.
	before := s.calls.Load()
	if _, err := c.Call(ctx, 1, 1, 1, nil, nil); err != context.Canceled {
		t.Fatalf("cancelled: %v", err)
	}
	// The client still works after a cancelled call.
	s2 := udpServer(t, echo)
	c2 := dial(t, "udp", s2.addr, ClientOptions{})
	if _, err := c2.Call(context.Background(), 1, 1, 1, nil, nil); err != nil {
		t.Fatal(err)
	}
	if s.calls.Load() != before {
		t.Errorf("a call with a cancelled context was sent")
	}
}

// Reusing a UDP client after a cancelled call: the stale deadline must not
// leak into the next call.
func TestClientReuseAfterCancel(t *testing.T) {
	var drop atomic.Bool
	drop.Store(true)
	s := udpServer(t, func(n int, h *CallHeader, args []byte) [][]byte {
		if drop.Load() {
			return nil
		}
		return echo(n, h, args)
	})
	c := dial(t, "udp", s.addr, ClientOptions{Retransmit: time.Hour, Timeout: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := c.Call(ctx, 1, 1, 1, nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	drop.Store(false)
	if res, err := c.Call(context.Background(), 1, 1, 1, nil, []byte("ok!!")); err != nil || string(res) != "ok!!" {
		t.Fatalf("%q %v", res, err)
	}
}

func TestClientConcurrent(t *testing.T) {
	s := streamServer(t, "tcp", "127.0.0.1:0", echo)
	c := dial(t, "tcp", s.addr, ClientOptions{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				args := xdr.AppendUint32(xdr.AppendUint32(nil, uint32(i)), uint32(j))
				res, err := c.Call(context.Background(), 1, 1, 1, nil, args)
				if err != nil || string(res) != string(args) {
					t.Errorf("%d/%d: %x %v", i, j, res, err)
				}
			}
		})
	}
	wg.Wait()
}

func TestDialErrors(t *testing.T) {
	if _, err := Dial("sctp", "127.0.0.1:1", ClientOptions{}); err == nil {
		t.Error("sctp accepted")
	}
	if _, err := Dial("udp", "127.0.0.1:1", ClientOptions{LocalAddr: "not an address"}); err == nil {
		t.Error("bad local address accepted")
	}
	// LocalAddr is honoured.
	s := udpServer(t, echo)
	c := dial(t, "udp", s.addr, ClientOptions{LocalAddr: "127.0.0.1:0"})
	if a := c.LocalAddr().(*net.UDPAddr); !a.IP.IsLoopback() || a.Port == 0 {
		t.Errorf("local address %v", a)
	}
}

// A stream reply larger than MaxReply breaks the connection instead of
// being buffered.
func TestClientMaxReply(t *testing.T) {
	s := streamServer(t, "tcp", "127.0.0.1:0", func(n int, h *CallHeader, args []byte) [][]byte {
		return [][]byte{append(AppendAccepted(nil, h.XID, Success), make([]byte, 4000)...)}
	})
	c := dial(t, "tcp", s.addr, ClientOptions{MaxReply: 1000})
	if _, err := c.Call(context.Background(), 1, 1, 1, nil, nil); err != ErrRecordTooLarge {
		t.Fatalf("%v, want ErrRecordTooLarge", err)
	}
}

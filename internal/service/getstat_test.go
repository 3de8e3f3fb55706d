package service

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/internal/testvec"
	"github.com/openrpcbind/rpcbind/pmap"
)

// fillStats grows all six GETSTAT lists to MaxStatEntries as a remote
// client can (issue 11 item 1): GETPORT, GETADDR and CALLIT/INDIRECT of
// distinct programs over v2, v3 and v4, from one non-local UDP source.
// CALLIT and INDIRECT are counted even without -r.
func fillStats(s *Service) {
	c := udpCaller("192.0.2.9:40000")
	buf := make([]byte, 0, 512)
	for i := uint32(0); i < MaxStatEntries; i++ {
		prog := 500000 + i
		s.ServeRPC(buf, call(1, 2, 3, (&pmap.Mapping{Prog: prog, Vers: 1, Prot: 17}).AppendXDR(nil)), c)
		s.ServeRPC(buf, call(1, 3, 3, pmap.AppendRPCB(nil, prog, 1, "udp", "", "")), c)
		s.ServeRPC(buf, call(1, 4, 3, pmap.AppendRPCB(nil, prog, 1, "udp", "", "")), c)
		ca := (&pmap.CallArgs{Prog: prog, Vers: 1, Proc: 1}).AppendXDR(nil)
		s.ServeRPC(buf, call(1, 2, 5, ca), c)  // v2 CALLIT
		s.ServeRPC(buf, call(1, 3, 5, ca), c)  // v3 CALLIT
		s.ServeRPC(buf, call(1, 4, 10, ca), c) // v4 INDIRECT
	}
}

func fullStatService(t testing.TB) *Service {
	s, _ := newTestService()
	fillStats(s)
	st := s.Stats()
	for vi := range st {
		if len(st[vi].Addr) != MaxStatEntries || len(st[vi].Rmt) != MaxStatEntries {
			t.Fatalf("v%d: %d addr and %d rmt entries, want %d each", vi+2, len(st[vi].Addr), len(st[vi].Rmt), MaxStatEntries)
		}
	}
	return s
}

// getStatCall is a v4 GETSTAT (RPCBPROC_GETSTAT = 12).
func getStatCall(xid uint32) []byte { return call(xid, 4, uint32(pmap.RPCBProcGetStat), nil) }

// TestGetStatUDPFullIsFree (issue 11 item 1): with every list full the
// reply (~197 KB) cannot fit a datagram. The answer is the reference's
// SYSTEM_ERR, byte for byte, and costs nothing: no allocation (fee1c75
// copied, sorted and encoded every list, ~0.9 MB, to throw it away).
func TestGetStatUDPFullIsFree(t *testing.T) {
	s := fullStatService(t)
	c := udpCaller("192.0.2.10:40000")
	buf := make([]byte, 0, 512)
	got, send := s.ServeRPC(buf, getStatCall(7), c)
	if want := replyHeader(7, rpc.SystemErr); !send || !bytes.Equal(got, want) {
		t.Fatalf("UDP GETSTAT: send %v, got %s, want SYSTEM_ERR %s", send, testvec.Hex(got), testvec.Hex(want))
	}
	msg := getStatCall(8)
	if n := testing.AllocsPerRun(50, func() { s.ServeRPC(buf, msg, c) }); n != 0 {
		t.Errorf("UDP GETSTAT with full lists: %v allocations per call, want 0", n)
	}
}

// TestGetStatStreamAppends (issue 11 item 1): over a stream the full lists
// are encoded straight into the caller's buffer: no allocation when it has
// room, the bytes of a decoded-and-re-encoded Stats, newest-created first.
func TestGetStatStreamAppends(t *testing.T) {
	s := fullStatService(t)
	c := udpCaller("192.0.2.10:40000")
	c.Netid = pmap.NetidTCP
	buf := make([]byte, 0, 256<<10)
	got, _, send := s.ServeRPCTail(buf, getStatCall(9), c)
	if !send {
		t.Fatal("stream GETSTAT: no reply")
	}
	if len(got) < 190000 {
		t.Fatalf("stream GETSTAT: %d bytes, want the full lists (~197 KB)", len(got))
	}
	// The reply counts itself: decode it, then compare with a re-encoding.
	body := got[len(replyHeader(9, rpc.Success)):]
	st, err := pmap.DecodeStatByVers(body)
	if err != nil {
		t.Fatal(err)
	}
	if re := pmap.AppendStatByVers(nil, &st); !bytes.Equal(re, body) {
		t.Error("stream GETSTAT does not re-encode to itself")
	}
	for vi := range st {
		if a := st[vi].Addr; a[0].Prog != 500000+MaxStatEntries-1 || a[len(a)-1].Prog != 500000 {
			t.Errorf("v%d addrinfo: first prog %d, last %d: want newest first", vi+2, a[0].Prog, a[len(a)-1].Prog)
		}
	}
	msg := getStatCall(10)
	if n := testing.AllocsPerRun(20, func() { s.ServeRPCTail(buf, msg, c) }); n != 0 {
		t.Errorf("stream GETSTAT with full lists: %v allocations per call, want 0", n)
	}
}

// BenchmarkGetStat: GETSTAT with all six lists full, over UDP (answered
// SYSTEM_ERR) and over a stream (~197 KB encoded).
func BenchmarkGetStat(b *testing.B) {
	s := fullStatService(b)
	for _, netid := range []string{pmap.NetidUDP, pmap.NetidTCP} {
		b.Run(netid, func(b *testing.B) {
			c := udpCaller("192.0.2.10:40000")
			c.Netid = netid
			buf := make([]byte, 0, 256<<10)
			msg := getStatCall(1)
			b.ReportAllocs()
			for b.Loop() {
				s.ServeRPCTail(buf, msg, c)
			}
		})
	}
}

// BenchmarkGetPortStats: GETPORT with full statistics lists, of a key
// already counted (update) and of a new key each time (creation and
// eviction of the least recently updated key).
func BenchmarkGetPortStats(b *testing.B) {
	for _, fresh := range []bool{false, true} {
		b.Run(fmt.Sprintf("newkey=%v", fresh), func(b *testing.B) {
			s := fullStatService(b)
			c := udpCaller("192.0.2.10:40000")
			var msgs [][]byte
			for i := uint32(0); i < 2*MaxStatEntries; i++ {
				prog := uint32(500000 + MaxStatEntries/2)
				if fresh {
					prog = 600000 + i
				}
				msgs = append(msgs, call(1, 2, 3, (&pmap.Mapping{Prog: prog, Vers: 1, Prot: 17}).AppendXDR(nil)))
			}
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				s.ServeRPC(buf, msgs[i%len(msgs)], c)
				i++
			}
		})
	}
}

// BenchmarkGetPortDuringGetStat: the victim's GETPORT while another
// goroutine sends stream GETSTATs with full lists as fast as it can.
func BenchmarkGetPortDuringGetStat(b *testing.B) {
	s := fullStatService(b)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := &access.Caller{Netid: pmap.NetidTCP, Addr: udpCaller("192.0.2.11:40000").Addr, UID: -1}
		buf := make([]byte, 0, 256<<10)
		msg := getStatCall(1)
		for {
			select {
			case <-stop:
				return
			default:
				s.ServeRPCTail(buf, msg, c)
			}
		}
	}()
	c := udpCaller("192.0.2.10:40000")
	msg := call(1, 2, 3, (&pmap.Mapping{Prog: 500000 + MaxStatEntries/2, Vers: 1, Prot: 17}).AppendXDR(nil))
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		s.ServeRPC(buf, msg, c)
	}
	close(stop)
	<-done
}

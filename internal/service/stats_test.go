package service

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
)

// checkList verifies a statList's structure: both chains hold every pool
// entry once, links agree both ways, the index matches and the maintained
// size is the elements' encoded size.
func checkList(t *testing.T, name string, l *statList) {
	t.Helper()
	n := len(l.ents)
	if len(l.idx) != n {
		t.Fatalf("%s: index has %d keys, pool %d", name, len(l.idx), n)
	}
	var size int64
	seen := make([]bool, n)
	prev := int32(0)
	k := 0
	for i := l.newest; i != 0; i = l.ents[i-1].older {
		if k++; k > n || seen[i-1] {
			t.Fatalf("%s: creation chain longer than the pool or cyclic", name)
		}
		seen[i-1] = true
		e := &l.ents[i-1]
		if e.newer != prev {
			t.Fatalf("%s: entry %d newer = %d, want %d", name, i, e.newer, prev)
		}
		if l.idx[e.key] != i-1 {
			t.Fatalf("%s: index of %+v = %d, want %d", name, e.key, l.idx[e.key], i-1)
		}
		size += l.entrySize(e)
		prev = i
	}
	if k != n {
		t.Fatalf("%s: creation chain has %d of %d entries", name, k, n)
	}
	k, prev = 0, 0
	for i := l.mru; i != 0; i = l.ents[i-1].lruNext {
		if k++; k > n {
			t.Fatalf("%s: update chain longer than the pool", name)
		}
		if l.ents[i-1].lruPrev != prev {
			t.Fatalf("%s: entry %d lruPrev = %d, want %d", name, i, l.ents[i-1].lruPrev, prev)
		}
		prev = i
	}
	if k != n || l.lru != prev {
		t.Fatalf("%s: update chain has %d of %d entries, tail %d want %d", name, k, n, l.lru, prev)
	}
	if got := l.size.Load(); got != size {
		t.Fatalf("%s: maintained size %d, elements encode to %d", name, got, size)
	}
}

// TestStatModel: random lookups and remote calls over a key space larger
// than the cap give the same GETSTAT bytes as the statistics of fee1c75
// (pool, O(n) eviction scan, sorting snapshot), and wireSize is exact.
func TestStatModel(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		rng := rand.New(rand.NewPCG(seed, 11))
		var s stats
		s.init()
		var m oldStats
		netids := []string{"udp", "tcp", "udp6", "tcp6", "local", "rawip", "unix", "bogus"}
		for op := 0; op < 30000; op++ {
			vi := rng.IntN(pmap.NumStatVers)
			// Skewed programs: a hot set that stays and a cold tail that
			// forces evictions.
			prog := uint32(rng.IntN(64))
			if rng.IntN(3) == 0 {
				prog = uint32(rng.IntN(1600))
			}
			vers := uint32(rng.IntN(2))
			netid := netids[rng.IntN(len(netids))]
			ok := rng.IntN(2) == 0
			if rng.IntN(2) == 0 {
				s.getAddr(vi, prog, vers, netid, ok)
				m.getAddr(vi, prog, vers, netid, ok)
			} else {
				ind := rng.IntN(2) == 0
				proc := uint32(rng.IntN(3))
				s.rmtCall(vi, ind, prog, vers, proc, netid, ok)
				m.rmtCall(vi, ind, prog, vers, proc, netid, ok)
			}
			if op%5000 == 4999 || op == 200 {
				got := s.appendXDR(nil)
				want := pmap.AppendStatByVers(nil, m.snapshot())
				if !bytes.Equal(got, want) {
					t.Fatalf("seed %d op %d: GETSTAT bytes differ from the model (%d vs %d bytes)", seed, op, len(got), len(want))
				}
				if int64(len(got)) != s.wireSize() {
					t.Fatalf("seed %d op %d: wireSize %d, encoding %d bytes", seed, op, s.wireSize(), len(got))
				}
				for vi := range s.addr {
					checkList(t, "addr", &s.addr[vi])
					checkList(t, "rmt", &s.rmt[vi])
				}
			}
		}
	}
}

// TestGetStatUDPVisitsNothing (issue 11 item 1): with full lists a UDP
// GETSTAT is decided from the maintained size: no list element is encoded.
// A stream GETSTAT encodes each element once, without sorting.
func TestGetStatUDPVisitsNothing(t *testing.T) {
	s := fullStatService(t)
	c := udpCaller("192.0.2.10:40000")
	before := s.stats.visited
	for i := 0; i < 10; i++ {
		s.ServeRPC(nil, getStatCall(1), c)
	}
	if d := s.stats.visited - before; d != 0 {
		t.Errorf("10 UDP GETSTATs with full lists encoded %d list elements, want 0", d)
	}
	c.Netid = pmap.NetidTCP
	s.ServeRPC(nil, getStatCall(1), c)
	if d := s.stats.visited - before; d != 6*MaxStatEntries {
		t.Errorf("a stream GETSTAT encoded %d list elements, want %d", d, 6*MaxStatEntries)
	}
}

// TestGetStatUDPFits: below the datagram limit the UDP reply is encoded as
// over a stream; the size check is exact at the boundary.
func TestGetStatUDPFits(t *testing.T) {
	s, _ := newTestService()
	u := udpCaller("192.0.2.10:40000")
	tc := udpCaller("192.0.2.10:40000")
	tc.Netid = pmap.NetidTCP
	buf := make([]byte, 0, 512)
	for i := uint32(0); ; i++ {
		got, send := s.ServeRPC(nil, getStatCall(3), u)
		want, _ := s.ServeRPC(nil, getStatCall(3), tc)
		if len(want) > MaxUDPReply {
			if !send || !bytes.Equal(got, replyHeader(3, rpc.SystemErr)) {
				t.Fatalf("reply of %d bytes over UDP: got %d bytes, want SYSTEM_ERR", len(want), len(got))
			}
			break
		}
		// The stream reply counted one GETSTAT more (the UDP one).
		if !send || len(got) != len(want) {
			t.Fatalf("reply of %d bytes over UDP: send %v, %d bytes", len(want), send, len(got))
		}
		s.ServeRPC(buf, call(1, 2, 3, (&pmap.Mapping{Prog: 700000 + i, Vers: 1, Prot: 17}).AppendXDR(nil)), u)
	}
}

// TestLookupsDuringGetStat (issue 11 item 1): statistics updates of
// lookups — existing keys, new keys, evictions, every list — complete
// while a GETSTAT is paused in the middle of its encoding.
func TestLookupsDuringGetStat(t *testing.T) {
	s := fullStatService(t)
	paused := make(chan struct{})
	release := make(chan struct{})
	first := true
	statEncodeHook = func() {
		if first {
			first = false
			close(paused)
			<-release
		}
	}
	defer func() { statEncodeHook = nil }()
	tc := udpCaller("192.0.2.10:40000")
	tc.Netid = pmap.NetidTCP
	statDone := make(chan []byte)
	go func() {
		r, _ := s.ServeRPC(nil, getStatCall(4), tc)
		statDone <- r
	}()
	<-paused
	lookups := make(chan struct{})
	go func() {
		defer close(lookups)
		c := udpCaller("192.0.2.12:40000")
		for _, prog := range []uint32{500000, 800000, 800001} { // existing, new, new
			s.ServeRPC(nil, call(1, 2, 3, (&pmap.Mapping{Prog: prog, Vers: 1, Prot: 17}).AppendXDR(nil)), c)
			s.ServeRPC(nil, call(1, 4, 3, pmap.AppendRPCB(nil, prog, 1, "udp", "", "")), c)
			s.ServeRPC(nil, call(1, 4, 10, (&pmap.CallArgs{Prog: prog, Vers: 1, Proc: 1}).AppendXDR(nil)), c)
		}
	}()
	select {
	case <-lookups:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("lookups waited behind a paused GETSTAT")
	}
	close(release)
	if r := <-statDone; len(r) < 190000 {
		t.Fatalf("GETSTAT reply of %d bytes", len(r))
	}
	st := s.Stats()
	if a := st[0].Addr; a[0].Prog != 800001 || a[1].Prog != 800000 {
		t.Errorf("v2 addrinfo after the lookups starts %d, %d; want 800001, 800000", a[0].Prog, a[1].Prog)
	}
}

// maxFewStatsBytes bounds the heap the statistics take once a client has
// asked about a few (prog, vers, netid): the lists grow with their entries
// and are not sized for MaxStatEntries up front (a map sized for 1,024 keys
// and its pool were about 90 KB per list, resident for the daemon's life).
const maxFewStatsBytes = 8 << 10

func TestStatsHeapGrowsWithEntries(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := new(stats)
	s.init()
	for vi := range pmap.NumStatVers {
		for p := range uint32(4) {
			s.getAddr(vi, 100000+p, 2, "udp", true)
			s.rmtCall(vi, false, 100000+p, 2, 0, "tcp", true)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	got := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	runtime.KeepAlive(s)
	if got > maxFewStatsBytes {
		t.Errorf("4 addr and 4 rmt entries per version take %d heap bytes, budget %d", got, maxFewStatsBytes)
	}
}

package ratelimit

import (
	"net/netip"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
)

var t0 = time.Unix(1_800_000_000, 0)

const req, big = 40, 684 // v4 DUMP on a fresh daemon (spec §3.5)

func count(l *Limiter, src string, n int, now time.Time) int {
	a := netip.MustParseAddr(src)
	ok := 0
	for i := 0; i < n; i++ {
		if l.Allow(a, req, big, now) {
			ok++
		}
	}
	return ok
}

func TestBurstThenRate(t *testing.T) {
	l := New(Config{})
	if got := count(l, "192.0.2.7", 1000, t0); got != DefaultBurst {
		t.Fatalf("burst: %d allowed, want %d", got, DefaultBurst)
	}
	if got := count(l, "192.0.2.7", 1000, t0.Add(time.Second)); got != DefaultRate {
		t.Fatalf("after 1s: %d allowed, want %d", got, DefaultRate)
	}
	if got := count(l, "192.0.2.7", 1000, t0.Add(time.Second+50*time.Millisecond)); got != 1 {
		t.Fatalf("after 50ms more: %d allowed, want 1", got)
	}
	// Idle long enough, the bucket is full again (and no fuller).
	if got := count(l, "192.0.2.7", 1000, t0.Add(time.Hour)); got != DefaultBurst {
		t.Fatalf("after an hour: %d allowed, want %d", got, DefaultBurst)
	}
	if s := l.Stats(); s.Limited == 0 {
		t.Fatal("Limited not counted")
	}
}

func TestExempt(t *testing.T) {
	l := New(Config{Burst: 1, Rate: 1})
	for _, src := range []string{"127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"} {
		if got := count(l, src, 100, t0); got != 100 {
			t.Errorf("local %s limited: %d of 100", src, got)
		}
	}
	if !l.Allow(netip.Addr{}, req, big, t0) {
		t.Error("local socket (no address) limited")
	}
	a := netip.MustParseAddr("192.0.2.9")
	for i := 0; i < 100; i++ {
		if !l.Allow(a, 56, 28, t0) || !l.Allow(a, 40, 40, t0) {
			t.Fatal("a reply no larger than its request was limited")
		}
	}
	if New(Config{Off: true}).Allow(a, req, big, t0) != true {
		t.Error("Off limits")
	}
}

func TestPrefixes(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"192.0.2.1", "192.0.2.254", true},
		{"192.0.2.1", "::ffff:192.0.2.9", true},
		{"192.0.2.1", "192.0.3.1", false},
		{"2001:db8:0:ff::1", "2001:db8:0:1::2", true}, // same /56
		{"2001:db8:0:100::1", "2001:db8:0:1::2", false},
		{"::c000:201", "192.0.2.1", false}, // IPv4-compatible is IPv6
	} {
		l := New(Config{Burst: 10, Rate: 1})
		count(l, tc.a, 10, t0)
		got := count(l, tc.b, 1, t0) == 0
		if got != tc.same {
			t.Errorf("%s and %s share a bucket: %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

func TestGlobal(t *testing.T) {
	l := New(Config{Burst: 5, GlobalBurst: 50, GlobalRate: 10})
	ok := 0
	for i := 0; i < 100; i++ {
		a := netip.AddrFrom4([4]byte{198, 51, byte(i), 1})
		for j := 0; j < 5; j++ {
			if l.Allow(a, req, big, t0) {
				ok++
			}
		}
	}
	if ok != 50 {
		t.Fatalf("global burst: %d allowed across 100 prefixes, want 50", ok)
	}
}

// TestBounded: a million distinct prefixes do not grow memory, and a
// flooding prefix is not evicted by them (its bucket stays empty). (Many
// other prefixes flooding as hard do evict it: the table holds Ways
// drained buckets per set.)
func TestBounded(t *testing.T) {
	l := New(Config{Sets: 64, GlobalRate: 1e9, GlobalBurst: 1e9})
	victim := netip.MustParseAddr("203.0.113.5")
	if got := count(l, "203.0.113.5", 1000, t0); got != DefaultBurst {
		t.Fatalf("victim burst %d", got)
	}
	now := t0
	allocs := testing.AllocsPerRun(1, func() {
		for i := 0; i < 1_000_000; i++ {
			// one call from each of a million /24s
			a := netip.AddrFrom4([4]byte{11 + byte(i>>16), byte(i >> 8), byte(i), 1})
			l.Allow(a, req, big, now)
			if i%1000 == 0 {
				// the flood goes on, one per ms
				now = now.Add(time.Millisecond)
				l.Allow(victim, req, big, now)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations for a million sources", allocs)
	}
	if len(l.sets) != 64 {
		t.Fatal("table resized")
	}
	if l.Stats().Evicted == 0 {
		t.Fatal("no eviction with 65536 prefixes in 512 slots")
	}
	if l.Allow(victim, req, big, now) {
		t.Fatal("the flooding prefix was evicted and got a fresh burst")
	}
}

func call(vers uint32, proc pmap.Proc) []byte {
	return rpc.AppendCall(nil, 7, pmap.Prog, vers, uint32(proc), nil)
}

func TestRefuseUDP(t *testing.T) {
	remote, lo := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("127.0.0.1")
	on, off := New(Config{RefuseLists: true}), New(Config{})
	for _, tc := range []struct {
		name string
		req  []byte
		want bool
	}{
		{"v2 DUMP", call(2, pmap.PmapProcDump), true},
		{"v3 DUMP", call(3, pmap.RPCBProcDump), true},
		{"v4 DUMP", call(4, pmap.RPCBProcDump), true},
		{"v4 GETSTAT", call(4, pmap.RPCBProcGetStat), true},
		{"v3 proc 12 (PROC_UNAVAIL)", call(3, 12), false},
		{"v2 GETPORT", call(2, pmap.PmapProcGetPort), false},
		{"v4 GETADDR", call(4, pmap.RPCBProcGetAddr), false},
		{"NULL", call(2, 0), false},
		{"other program", rpc.AppendCall(nil, 7, 100003, 3, 4, nil), false},
		{"truncated", call(2, pmap.PmapProcDump)[:20], false},
	} {
		if got := on.RefuseUDP(remote, tc.req); got != tc.want {
			t.Errorf("%s from remote: %v, want %v", tc.name, got, tc.want)
		}
		if on.RefuseUDP(lo, tc.req) || on.RefuseUDP(netip.Addr{}, tc.req) || off.RefuseUDP(remote, tc.req) {
			t.Errorf("%s refused from local or with the option off", tc.name)
		}
	}
}

func TestAllocs(t *testing.T) {
	l := New(Config{RefuseLists: true})
	a6 := netip.MustParseAddr("2001:db8::1")
	a4 := netip.MustParseAddr("192.0.2.1")
	r := call(4, pmap.RPCBProcDump)
	if n := testing.AllocsPerRun(1000, func() {
		l.Allow(a6, req, big, t0)
		l.Allow(a4, req, big, t0)
		l.RefuseUDP(a4, r)
	}); n != 0 {
		t.Fatalf("%v allocations per call", n)
	}
}

func BenchmarkAllow(b *testing.B) {
	l := New(Config{Rate: 1e9, Burst: 1e6, GlobalRate: 1e9, GlobalBurst: 1e6})
	a := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		l.Allow(a, req, big, t0)
	}
}

func BenchmarkAllowManySources(b *testing.B) {
	l := New(Config{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		l.Allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), req, big, t0)
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	l := New(Config{Rate: 1e9, Burst: 1e6, GlobalRate: 1e9, GlobalBurst: 1e6})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			l.Allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), req, big, t0)
		}
	})
}

func BenchmarkRefuseUDP(b *testing.B) {
	l := New(Config{RefuseLists: true})
	a := netip.MustParseAddr("192.0.2.1")
	r := call(2, pmap.PmapProcGetPort)
	b.ReportAllocs()
	for b.Loop() {
		l.RefuseUDP(a, r)
	}
}

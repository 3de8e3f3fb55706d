package main

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/openrpcbind/rpcbind/pmap"
)

// TestFillCallsHitSixLists: the six fill datagrams are calls to program
// 100000 on the six (version, procedure) pairs whose statistics go to the
// six GETSTAT lists, each naming the program being filled.
func TestFillCallsHitSixLists(t *testing.T) {
	want := [6][2]uint32{{2, procGetport}, {3, procGetport}, {4, procGetport}, {2, procCallit}, {3, procCallit}, {4, procIndirect}}
	calls := fillCalls(100, 0x30000007)
	for i, m := range calls {
		if len(m) < 44 {
			t.Fatalf("call %d: %d bytes", i, len(m))
		}
		w := func(off int) uint32 { return binary.BigEndian.Uint32(m[off:]) }
		if w(4) != 0 || w(8) != 2 || w(12) != 100000 {
			t.Errorf("call %d: header %x", i, m[:16])
		}
		if got := [2]uint32{w(16), w(20)}; got != want[i] {
			t.Errorf("call %d: (vers, proc) = %v, want %v", i, got, want[i])
		}
		if w(40) != 0x30000007 {
			t.Errorf("call %d: first argument %#x, want the program", i, w(40))
		}
	}
}

// TestCountStatEntries counts the entries of an encoded GETSTAT result,
// past pmap's decoding cap, and refuses a truncated one.
func TestCountStatEntries(t *testing.T) {
	for _, n := range []int{0, 1, 1100} {
		var s [pmap.NumStatVers]pmap.Stat
		for i := 0; i < n; i++ {
			for v := range s {
				s[v].Addr = append(s[v].Addr, pmap.AddrStat{Prog: uint32(i), Vers: 1, Netid: "udp"})
				s[v].Rmt = append(s[v].Rmt, pmap.RmtStat{Prog: uint32(i), Vers: 1, Proc: 1, Netid: "udp"})
			}
		}
		b := pmap.AppendStatByVers(nil, &s)
		if got := countStatEntries(b); got != 6*n {
			t.Errorf("%d per list: counted %d, want %d", n, got, 6*n)
		}
		if got := countStatEntries(b[:len(b)-8]); got != -1 {
			t.Errorf("%d per list, truncated: counted %d, want -1", n, got)
		}
	}
}

// TestAttackReport: a row meets its targets only with no loss, a p99
// within 2× the unloaded p99 + 1 ms and (ours) within the reference's,
// (unless that one lost 1% or more) and an RSS within 64 MiB.
func TestAttackReport(t *testing.T) {
	raw := `daemon=ours attack=none victim=udp sent=100 lost=0 p50=100us p99=1000us max=2000us
daemon=ours attack=none rss_max_kib=8000 daemon_alive=true
daemon=ours attack=a victim=udp sent=100 lost=0 p50=100us p99=3000us max=4000us
daemon=ours attack=a rss_max_kib=9000 daemon_alive=true
daemon=ours attack=a attacker kind=a sent=1 replies=1 failed=0 rate=42 unit=calls/s
daemon=ours attack=b victim=udp sent=100 lost=0 p50=100us p99=3001us max=4000us
daemon=ours attack=b rss_max_kib=9000 daemon_alive=true
daemon=ours attack=b attacker kind=b sent=1 replies=1 failed=0 rate=1 unit=calls/s
daemon=ours attack=c victim=udp sent=100 lost=1 p50=100us p99=100us max=4000us
daemon=ours attack=c rss_max_kib=70000 daemon_alive=true
daemon=ours attack=c attacker kind=c sent=1 replies=1 failed=0 rate=1 unit=calls/s
daemon=ours attack=d victim=udp sent=100 lost=0 p50=100us p99=2000us max=4000us
daemon=ours attack=d rss_max_kib=9000 daemon_alive=true
daemon=ours attack=d attacker kind=d sent=1 replies=1 failed=0 rate=1 unit=calls/s
daemon=reference attack=none victim=udp sent=100 lost=0 p50=100us p99=1000us max=2000us
daemon=reference attack=none rss_max_kib=4000 daemon_alive=true
daemon=reference attack=d victim=udp sent=100 lost=0 p50=100us p99=1500us max=2000us
daemon=reference attack=d rss_max_kib=4000 daemon_alive=true
daemon=reference attack=d attacker kind=d sent=1 replies=1 failed=0 rate=1 unit=calls/s
daemon=ours attack=e victim=udp sent=100 lost=0 p50=100us p99=2000us max=4000us
daemon=ours attack=e rss_max_kib=9000 daemon_alive=true
daemon=ours attack=e attacker kind=e sent=1 replies=1 failed=0 rate=1 unit=calls/s
daemon=reference attack=e victim=udp sent=100 lost=1 p50=100us p99=150us max=200us
daemon=reference attack=e rss_max_kib=4000 daemon_alive=true
daemon=reference attack=e attacker kind=e sent=1 replies=1 failed=0 rate=1 unit=calls/s
`
	var out strings.Builder
	if err := attackReport(strings.NewReader(raw), &out); err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, l := range strings.Split(out.String(), "\n") {
		f := strings.Split(l, " | ")
		if len(f) == 11 && strings.HasPrefix(f[0], "| ") {
			rows[strings.TrimPrefix(f[0], "| ")+"/"+f[1]] = strings.TrimSuffix(f[10], " |")
		}
	}
	for _, tc := range []struct{ row, want string }{
		{"ours/none", "met"},
		{"ours/a", "met"},         // 3000 = 2 × 1000 + 1000
		{"ours/b", "missed: p99"}, // one µs over
		{"ours/c", "missed: loss, RSS"},
		{"ours/d", "missed: p99 > ref"},
		{"reference/d", "met"},
		{"ours/e", "met"}, // the reference lost 1%: its p99 is a loss
		{"reference/e", "missed: loss"},
	} {
		if got := rows[tc.row]; got != tc.want {
			t.Errorf("%s: %q, want %q\n%s", tc.row, got, tc.want, out.String())
		}
	}
	if !strings.Contains(out.String(), "| 42 calls/s |") {
		t.Errorf("attack rate missing:\n%s", out.String())
	}
}

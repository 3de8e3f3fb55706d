package registry

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/testvec"
)

func TestSelfEntries(t *testing.T) {
	got := referenceSelf()
	type k struct {
		vers  uint32
		netid string
	}
	want := []k{{4, "tcp6"}, {3, "tcp6"}, {4, "udp6"}, {3, "udp6"}, {4, "tcp"}, {3, "tcp"}, {2, "tcp"}, {4, "udp"}, {3, "udp"}, {2, "udp"}, {4, "local"}, {3, "local"}}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i, e := range got {
		if e.Prog != 100000 || e.Vers != want[i].vers || e.Netid != want[i].netid || e.Owner != "superuser" {
			t.Errorf("entry %d = %+v, want %+v", i, e, want[i])
		}
	}
	// A missing transport is left out; the others keep their order.
	got = SelfEntries("", "::1.0.111", "0.0.0.0.0.111", "", "")
	var netids []string
	for _, e := range got {
		netids = append(netids, e.Netid+":"+e.Addr)
	}
	wantS := []string{"udp6:::1.0.111", "udp6:::1.0.111", "tcp:0.0.0.0.0.111", "tcp:0.0.0.0.0.111", "tcp:0.0.0.0.0.111"}
	if !slices.Equal(netids, wantS) {
		t.Errorf("partial self entries %q, want %q", netids, wantS)
	}
}

// The fresh daemon's DUMPs are exchanges 1 (v2) and 2 (v4).
func TestFreshDumps(t *testing.T) {
	tab := New(referenceSelf())
	for _, tc := range []struct {
		n    int
		dump func([]byte) []byte
	}{{1, tab.AppendDumpV2}, {2, tab.AppendDumpV3}} {
		want := parseReply(t, testvec.Get(t, tc.n).ReplyMsg()).results
		if got := tc.dump(nil); !bytes.Equal(got, want) {
			t.Errorf("exchange %d: got %s\nwant %s", tc.n, testvec.Hex(got), testvec.Hex(want))
		}
	}
}

// The SET/UNSET/GETPORT/GETADDR rules one by one, as the reference applied
// them (exchange numbers of the evidence in brackets).
func TestSemantics(t *testing.T) {
	type step struct {
		what string
		do   func(*Table) any
		want any
	}
	set := func(prog, vers uint32, netid, addr, owner string) func(*Table) any {
		return func(t *Table) any { return t.Set(Entry{prog, vers, netid, addr, owner}) }
	}
	setV2 := func(prog, vers, prot, port uint32, owner string) func(*Table) any {
		return func(t *Table) any { return t.SetV2(prog, vers, prot, port, owner) }
	}
	unset := func(prog, vers uint32, netid, owner string) func(*Table) any {
		return func(t *Table) any { return t.Unset(prog, vers, netid, owner) }
	}
	unsetV2 := func(prog, vers uint32, owner string) func(*Table) any {
		return func(t *Table) any { return t.UnsetV2(prog, vers, owner) }
	}
	getport := func(prog, vers, prot uint32) func(*Table) any {
		return func(t *Table) any { return t.GetPort(prog, vers, prot) }
	}
	getaddr := func(prog, vers uint32, netid string, exact bool) func(*Table) any {
		return func(t *Table) any {
			a, ok := t.GetAddr(prog, vers, []byte(netid), exact)
			if !ok {
				return "<none>"
			}
			return a
		}
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"v2 set rules [8-12,14-16,19]", []step{
			{"new", setV2(300001, 1, 6, 1000, "unknown"), true},
			{"identical again", setV2(300001, 1, 6, 1000, "unknown"), true},
			{"conflicting port", setV2(300001, 1, 6, 1001, "unknown"), false},
			{"prot 99", setV2(300001, 1, 99, 1000, "unknown"), false},
			{"port 70000", setV2(300001, 2, 17, 70000, "unknown"), true},
			{"stored as 4464", getport(300001, 2, 17), uint32(4464)},
			{"uaddr is 0.0.0.0.17.112", getaddr(300001, 2, "udp", true), "0.0.0.0.17.112"},
			{"exact", getport(300001, 1, 6), uint32(1000)},
			{"other version's port", getport(300001, 7, 6), uint32(1000)},
			{"udp v1 falls back to udp v2", getport(300001, 1, 17), uint32(4464)},
			{"prot 99", getport(300001, 1, 99), uint32(0)},
			{"unknown prog", getport(300099, 1, 6), uint32(0)},
		}},
		{"v2 sees v3 tcp/udp only, host part ignored", []step{
			{"v3 tcp", set(300002, 1, "tcp", "10.9.8.7.3.232", "unknown"), true},
			{"v3 TCP is not v2", set(300002, 2, "TCP", "0.0.0.0.3.233", "unknown"), true},
			{"v3 tcp6 is not v2", set(300002, 3, "tcp6", "::.3.234", "unknown"), true},
			{"v3 udp, one dot", set(300002, 4, "udp", "1.2", "unknown"), true},
			{"port from any host", getport(300002, 1, 6), uint32(1000)},
			{"TCP falls back to v1", getport(300002, 2, 6), uint32(1000)},
			{"tcp6 falls back to v1", getport(300002, 3, 6), uint32(1000)},
			{"unparsable udp", getport(300002, 4, 17), uint32(0)},
			{"v2 set over v3 entry with another string", setV2(300002, 1, 6, 1000, "unknown"), false},
		}},
		{"fallback is the last entry of the prog [15,52]", []step{
			{"v1", set(300003, 1, "udp", "0.0.0.0.3.233", "unknown"), true},
			{"v2", set(300003, 2, "udp", "127.0.0.1.3.235", "unknown"), true},
			{"v5", set(300003, 5, "tcp", "0.0.0.0.3.236", "unknown"), true},
			{"GETADDR v9 gives the last udp one", getaddr(300003, 9, "udp", false), "127.0.0.1.3.235"},
			{"GETVERSADDR v9", getaddr(300003, 9, "udp", true), "<none>"},
			{"exact v1", getaddr(300003, 1, "udp", false), "0.0.0.0.3.233"},
			{"arrival netid case-insensitive", getaddr(300003, 1, "UDP", true), "0.0.0.0.3.233"},
			{"GETPORT v9 gives the last udp one", getport(300003, 9, 17), uint32(1003)},
			{"other netid", getaddr(300003, 1, "udp6", false), "<none>"},
		}},
		{"set conflicts compare netids case-insensitively", []step{
			{"udp6", set(300004, 1, "udp6", "::.3.234", "unknown"), true},
			{"UDP6 same addr", set(300004, 1, "UDP6", "::.3.234", "1000"), true},
			{"Udp6 other addr", set(300004, 1, "Udp6", "::.3.235", "unknown"), false},
			{"addr is byte-compared", set(300004, 1, "udp6", "::.3.234 ", "unknown"), false},
		}},
		{"unset by netid, case-insensitive, TRUE when nothing matched [57,58,60]", []step{
			{"udp", set(300005, 2, "udp", "127.0.0.1.3.235", "unknown"), true},
			{"udp6", set(300005, 2, "udp6", "::1.3.236", "unknown"), true},
			{"tcp", set(300005, 2, "tcp", "127.0.0.1.3.237", "unknown"), true},
			{"unset UDP6", unset(300005, 2, "UDP6", "unknown"), true},
			{"udp6 gone", getaddr(300005, 2, "udp6", true), "<none>"},
			{"udp stays", getaddr(300005, 2, "udp", true), "127.0.0.1.3.235"},
			{"unset all", unset(300005, 2, "", "unknown"), true},
			{"tcp gone", getaddr(300005, 2, "tcp", true), "<none>"},
			{"again", unset(300005, 2, "", "unknown"), true},
		}},
		{"unset is all or nothing [179-181]", []step{
			{"su tcp", set(300010, 1, "tcp", "0.0.0.0.3.250", "superuser"), true},
			{"unknown udp", set(300010, 1, "udp", "0.0.0.0.3.251", "unknown"), true},
			{"unknown may not", unset(300010, 1, "", "unknown"), false},
			{"udp kept", getaddr(300010, 1, "udp", true), "0.0.0.0.3.251"},
			{"tcp kept", getaddr(300010, 1, "tcp", true), "0.0.0.0.3.250"},
			{"unknown removes its own by netid", unset(300010, 1, "udp", "unknown"), true},
			{"uid 1000 may not remove su", unset(300010, 1, "tcp", "1000"), false},
			{"superuser removes any", unset(300010, 1, "", "superuser"), true},
			{"gone", getaddr(300010, 1, "tcp", false), "<none>"},
		}},
		{"v2 unset: independent halves, never tcp6/udp6 [23]", []step{
			{"tcp su", setV2(300011, 1, 6, 1000, "superuser"), true},
			{"udp unknown", setV2(300011, 1, 17, 1001, "unknown"), true},
			{"udp6 unknown", set(300011, 1, "udp6", "::.3.235", "unknown"), true},
			{"unknown: tcp denied, udp removed", unsetV2(300011, 1, "unknown"), true},
			{"tcp stays", getport(300011, 1, 6), uint32(1000)},
			{"udp gone", getport(300011, 1, 17), uint32(0)},
			{"udp6 stays", getaddr(300011, 1, "udp6", true), "::.3.235"},
			{"tcp denied, udp empty: TRUE", unsetV2(300011, 1, "unknown"), true},
			{"tcp still there", getport(300011, 1, 6), uint32(1000)},
		}},
		{"v2 unset FALSE only when both halves are denied", []step{
			{"tcp su", setV2(300012, 1, 6, 1000, "superuser"), true},
			{"udp su", setV2(300012, 1, 17, 1000, "superuser"), true},
			{"unknown", unsetV2(300012, 1, "unknown"), false},
			{"kept", getport(300012, 1, 17), uint32(1000)},
		}},
		{"embedded NUL cuts strings like C", []step{
			{"tcp\\0x", set(300013, 1, "tcp\x00x", "0.0.0.0.3.232\x00junk", "unknown"), true},
			{"is tcp in v2", getport(300013, 1, 6), uint32(1000)},
			{"addr cut", getaddr(300013, 1, "tcp", true), "0.0.0.0.3.232"},
			{"unset \\0tcp means all", unset(300013, 1, "\x00tcp", "unknown"), true},
			{"gone", getport(300013, 1, 6), uint32(0)},
		}},
		{"no validation [185]", []step{
			{"foo", set(300020, 1, "foo", "0.0.0.0.3.255", "unknown"), true},
			{"empty", set(300020, 2, "", "", "unknown"), true},
			{"found on foo", getaddr(300020, 1, "foo", true), "0.0.0.0.3.255"},
			{"found on empty netid", getaddr(300020, 2, "", true), ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := New(referenceSelf())
			for _, s := range tt.steps {
				if got := s.do(tab); got != s.want {
					t.Errorf("%s: got %v (%T), want %v (%T)", s.what, got, got, s.want, s.want)
				}
				if err := tab.CheckInvariants(); err != nil {
					t.Fatalf("%s: %v", s.what, err)
				}
			}
		})
	}
}

func TestV2Port(t *testing.T) {
	tests := []struct {
		netid, addr string
		prot, port  uint32
		ok          bool
	}{
		{"tcp", "0.0.0.0.0.111", 6, 111, true},
		{"udp", "127.0.0.1.3.232", 17, 1000, true},
		{"tcp", "10.9.8.7.3.232", 6, 1000, true},     // host part ignored
		{"tcp", "0.0.0.0.300.1", 6, 76801, true},     // not masked to 16 bits
		{"tcp", "0.0.0.0. 3.+232x", 6, 1000, true},   // atoi leniency
		{"tcp", "a.b.c", 6, 0, true},                 // junk fields are 0
		{"tcp", "..", 6, 0, true},                    // empty fields are 0
		{"tcp", "0.0.0.0.-1.0", 6, 0xffffff00, true}, // negative wraps to 32 bits
		{"tcp", "1.2", 0, 0, false},                  // one dot
		{"tcp", "", 0, 0, false},
		{"TCP", "0.0.0.0.0.111", 0, 0, false}, // strcmp with "tcp"
		{"tcp6", "::.0.111", 0, 0, false},
		{"local", "/run/rpcbind.sock", 0, 0, false},
	}
	for _, tt := range tests {
		prot, port, ok := v2Port(tt.netid, tt.addr)
		if prot != tt.prot || port != tt.port || ok != tt.ok {
			t.Errorf("v2Port(%q, %q) = %d, %d, %v; want %d, %d, %v", tt.netid, tt.addr, prot, port, ok, tt.prot, tt.port, tt.ok)
		}
	}
}

func TestVersRangeQuirk(t *testing.T) {
	tab := New(nil)
	for _, v := range []uint32{3, 1, 0, 2, 7} {
		tab.Set(Entry{300001, v, "udp", "0.0.0.0.1.1", "unknown"})
	}
	tab.Set(Entry{300001, 9, "tcp", "0.0.0.0.1.1", "unknown"})
	// find_versions: 3 → (3,3); 1 → low 1; 0 → low 0; 2: low == 0 restarts (2,2); 7 → high 7.
	if l, h, ok := tab.VersRange(300001, "UDP"); l != 2 || h != 7 || !ok {
		t.Errorf("VersRange = %d, %d, %v; want 2, 7, true", l, h, ok)
	}
	if _, _, ok := tab.VersRange(300001, "udp6"); ok {
		t.Error("VersRange on an empty netid: ok")
	}
}

func TestLoad(t *testing.T) {
	tab := New(referenceSelf())
	saved := []Entry{
		{100000, 4, "tcp", "0.0.0.0.0.111", "superuser"}, // rpcbind's own: discarded
		{300001, 1, "tcp", "0.0.0.0.3.232", "unknown"},
		{300001, 1, "TCP", "0.0.0.0.3.233", "unknown"}, // duplicate key: skipped
		{300001, 1, "udp6", "::.3.234", "1000"},
	}
	var notified int
	tab.SetObserver(func(Op, Entry) error { notified++; return nil })
	if n := tab.Load(saved); n != 2 {
		t.Errorf("Load = %d, want 2", n)
	}
	if notified != 0 {
		t.Errorf("observer called %d times during Load", notified)
	}
	es := tab.Entries()
	if len(es) != 14 || es[12] != saved[1] || es[13] != saved[3] {
		t.Errorf("entries after Load: %+v", es[12:])
	}
	if p := tab.GetPort(300001, 1, 6); p != 1000 {
		t.Errorf("GetPort after Load = %d", p)
	}
	if err := tab.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
}

func TestObserver(t *testing.T) {
	tab := New(referenceSelf())
	type ev struct {
		op Op
		e  Entry
	}
	var evs []ev
	var errs []error
	fail := errors.New("disk full")
	tab.SetObserver(func(op Op, e Entry) error {
		evs = append(evs, ev{op, e})
		if e.Prog == 300002 {
			return fail
		}
		return nil
	})
	tab.OnError(func(op Op, e Entry, err error) { errs = append(errs, err) })
	a := Entry{300001, 1, "tcp", "0.0.0.0.3.232", "unknown"}
	b := Entry{300001, 1, "udp", "0.0.0.0.3.232", "unknown"}
	c := Entry{300002, 1, "udp", "0.0.0.0.3.233", "unknown"}
	tab.Set(a)
	tab.Set(a)                                                   // idempotent: no event
	tab.Set(Entry{300001, 1, "tcp", "0.0.0.0.3.240", "unknown"}) // FALSE: no event
	tab.Set(b)
	tab.Unset(300001, 1, "", "1000") // denied: no event
	tab.Unset(300001, 1, "", "unknown")
	tab.Unset(300001, 1, "", "unknown") // nothing: no event
	if !tab.Set(c) {
		t.Error("Set with a failing observer = false; the change must stand")
	}
	want := []ev{{OpSet, a}, {OpSet, b}, {OpUnset, a}, {OpUnset, b}, {OpSet, c}}
	if !slices.Equal(evs, want) {
		t.Errorf("events %+v\nwant   %+v", evs, want)
	}
	if len(errs) != 1 || errs[0] != fail {
		t.Errorf("errors %v, want [disk full]", errs)
	}
	if _, ok := tab.GetAddr(300002, 1, []byte("udp"), true); !ok {
		t.Error("entry lost after an observer error")
	}
	if OpSet.String() != "set" || OpUnset.String() != "unset" || Op(9).String() != "op(9)" {
		t.Error("Op.String")
	}
}

// The DUMP cache is shared by readers and rebuilt after each change; only
// changes to the v2 view invalidate the v2 encoding.
func TestDumpCache(t *testing.T) {
	tab := New(referenceSelf())
	v2 := tab.AppendDumpV2(nil)
	p2 := tab.dumpV2.Load()
	tab.Set(Entry{300001, 1, "udp6", "::.3.232", "unknown"})
	if tab.dumpV2.Load() != p2 {
		t.Error("a udp6 SET invalidated the v2 DUMP")
	}
	if tab.dumpV3.Load() != nil {
		t.Error("a SET left the v3 DUMP cached")
	}
	tab.Set(Entry{300001, 1, "udp", "0.0.0.0.3.232", "unknown"})
	if tab.dumpV2.Load() != nil {
		t.Error("a udp SET left the v2 DUMP cached")
	}
	if got := tab.AppendDumpV2(nil); len(got) != len(v2)+20 {
		t.Errorf("v2 DUMP grew by %d bytes, want 20", len(got)-len(v2))
	}
}

func TestZeroAllocs(t *testing.T) {
	tab := New(referenceSelf())
	tab.Set(Entry{300001, 1, "udp", "0.0.0.0.3.232", "unknown"})
	udp, upper := []byte("udp"), []byte("UDP")
	buf := make([]byte, 0, 4096)
	checks := map[string]func(){
		"GetPort":         func() { tab.GetPort(300001, 1, 17) },
		"GetPort miss":    func() { tab.GetPort(300099, 1, 17) },
		"GetAddr":         func() { tab.GetAddr(300001, 1, udp, false) },
		"GetAddr folded":  func() { tab.GetAddr(300001, 2, upper, false) },
		"GetAddr miss":    func() { tab.GetAddr(300099, 2, udp, true) },
		"AppendDumpV2":    func() { tab.AppendDumpV2(buf[:0]) },
		"AppendDumpV3":    func() { tab.AppendDumpV3(buf[:0]) },
		"Find":            func() { tab.Find(300001, 1, "udp") },
		"VersRange":       func() { tab.VersRange(300001, "udp") },
		"Set idempotent":  func() { tab.Set(Entry{300001, 1, "udp", "0.0.0.0.3.232", "unknown"}) },
		"Unset not found": func() { tab.Unset(300099, 1, "udp", "unknown") },
	}
	for name, f := range checks {
		f() // fill the caches
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations, want 0", name, n)
		}
	}
}

// A group indexes its versions by a map only past groupMapMin entries;
// lookups are the same on both sides of the threshold, and after removals.
func TestGroupVersionIndexThreshold(t *testing.T) {
	tb := New(nil)
	const prog, n = 400000, 3 * groupMapMin
	for v := uint32(1); v <= n; v++ {
		if !tb.Set(Entry{Prog: prog, Vers: v, Netid: "udp", Addr: "0.0.0.0.0." + strconv.Itoa(int(v)), Owner: "o"}) {
			t.Fatalf("SET v%d refused", v)
		}
		for w := uint32(1); w <= v; w++ {
			if got := tb.GetPort(prog, w, 17); got != w {
				t.Fatalf("after %d SETs: GETPORT v%d = %d", v, w, got)
			}
		}
		if got := tb.GetPort(prog, n+1, 17); got != v {
			t.Fatalf("after %d SETs: an unknown version gives the last one registered: %d", v, got)
		}
		if err := tb.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	}
	for v := uint32(1); v <= n; v += 2 {
		if !tb.Unset(prog, v, "udp", "o") {
			t.Fatalf("UNSET v%d refused", v)
		}
		if addr, ok := tb.GetAddr(prog, v, []byte("udp"), true); ok {
			t.Fatalf("v%d still found after UNSET: %q", v, addr)
		}
		if err := tb.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	}
	for v := uint32(2); v <= n; v += 2 {
		if got := tb.GetPort(prog, v, 17); got != v {
			t.Errorf("GETPORT v%d = %d after removals", v, got)
		}
	}
	// Down through the threshold to nothing: the version map goes when the
	// group is back to groupMapMin entries (CheckInvariants), lookups hold.
	for v := uint32(2); v <= n; v += 2 {
		if !tb.Unset(prog, v, "", "o") {
			t.Fatalf("UNSET v%d refused", v)
		}
		if err := tb.CheckInvariants(); err != nil {
			t.Fatalf("after UNSET v%d: %v", v, err)
		}
		for w := v + 2; w <= n; w += 2 {
			if got := tb.GetPort(prog, w, 17); got != w {
				t.Fatalf("after UNSET v%d: GETPORT v%d = %d", v, w, got)
			}
		}
	}
	if tb.Len() != 0 {
		t.Errorf("%d entries left", tb.Len())
	}
}

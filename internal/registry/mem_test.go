package registry

import (
	"runtime"
	"strconv"
	"testing"
)

// maxBytesPerEntry bounds the table's heap per registration, beyond the
// strings the caller hands it: 10,000 registrations of distinct programs on
// "tcp" (rpcbench -preload: each in the netid, (prog, vers) and v2
// indexes). The daemon's resident set with 10,000 registrations is mostly
// this table; it was 360 bytes a registration with a head/tail/count
// struct per group and per chain and the folded netid kept in each node.
const maxBytesPerEntry = 240

// distinctEntries returns n registrations of distinct programs on "tcp",
// as rpcbench -preload makes them.
func distinctEntries(n int) []Entry {
	es := make([]Entry, n)
	for i := range es {
		port := 1024 + i
		es[i] = Entry{Prog: 0x2f000000 + uint32(i), Vers: 1, Netid: "tcp",
			Addr: "0.0.0.0." + strconv.Itoa(port>>8) + "." + strconv.Itoa(port&255), Owner: "0"}
	}
	return es
}

func TestHeapBytesPerEntry(t *testing.T) {
	const n = 10000
	es := distinctEntries(n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tb := New(nil)
	for _, e := range es {
		if !tb.Set(e) {
			t.Fatalf("SET %d refused", e.Prog)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	runtime.KeepAlive(tb)
	runtime.KeepAlive(es)
	t.Logf("%d bytes per registration", per)
	if per > maxBytesPerEntry {
		t.Errorf("the table takes %d heap bytes per registration, budget %d", per, maxBytesPerEntry)
	}
}

// maxBytesAfterChurn bounds the heap the table keeps once 10,000
// registrations were set and then unset: its indexes are rebuilt as they
// empty (Go maps keep the room they grew to: 554 KB here on 66e91c1).
const maxBytesAfterChurn = 64 << 10

func TestHeapBytesAfterChurn(t *testing.T) {
	const n = 10000
	es := distinctEntries(n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tb := New(nil)
	for round := 0; round < 2; round++ {
		for _, e := range es {
			if !tb.Set(e) {
				t.Fatalf("SET %d refused", e.Prog)
			}
		}
		for _, e := range es {
			if !tb.Unset(e.Prog, e.Vers, "", e.Owner) {
				t.Fatalf("UNSET %d refused", e.Prog)
			}
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	got := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	runtime.KeepAlive(tb)
	runtime.KeepAlive(es)
	t.Logf("%d bytes kept after 10,000 SETs and UNSETs, twice", got)
	if got > maxBytesAfterChurn {
		t.Errorf("the empty table keeps %d heap bytes after 10,000 registrations came and went, budget %d", got, maxBytesAfterChurn)
	}
	if err := tb.CheckInvariants(); err != nil {
		t.Error(err)
	}
}

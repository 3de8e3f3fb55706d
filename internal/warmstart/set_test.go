package warmstart

import (
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// setModel is the replay rule written out plainly: SET appends unless
// (prog, vers, netid) is present (netid case-insensitive); UNSET removes
// the matches, on every netid when its netid is "".
func setModel(m []Entry, op Op, e Entry) []Entry {
	for i := 0; i < len(m); i++ {
		x := m[i]
		if x.Prog != e.Prog || x.Vers != e.Vers {
			continue
		}
		match := strings.EqualFold(x.Netid, e.Netid)
		if op == OpSet && match {
			return m
		}
		if op == OpUnset && (e.Netid == "" || match) {
			m = append(m[:i:i], m[i+1:]...)
			i--
		}
	}
	if op == OpSet {
		m = append(m, e)
	}
	return m
}

// The compact set (slots, holes, chains, compaction) agrees with the model
// after every step of a churn that exercises every path: duplicate SETs in
// other cases, UNSETs of one netid and of all, holes past minHoles.
func TestEntrySetModel(t *testing.T) {
	for _, tc := range []struct {
		name        string
		progs, vers int
		unsetPct    int
		steps       int
		compacts    bool // the churn must reclaim holes at least once
	}{
		{"small churn", 3, 2, 45, 3000, true},
		{"wide, mostly sets", 400, 3, 20, 6000, false},
		{"drain", 50, 2, 70, 4000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(tc.steps)))
			netids := []string{"tcp", "TCP", "udp", "Udp", "tcp6", "local", ""}
			s := newEntrySet(nil)
			var model []Entry
			compactions := 0
			for step := range tc.steps {
				e := ent(200000+uint32(r.IntN(tc.progs)), uint32(r.IntN(tc.vers)),
					netids[r.IntN(len(netids))], "a"+string(rune('0'+step%10)), "o")
				op := OpSet
				if r.IntN(100) < tc.unsetPct {
					op = OpUnset
				}
				slots := len(s.es)
				s.apply(op, &e)
				if len(s.es) < slots {
					compactions++
				}
				model = setModel(model, op, e)
				if s.len() != len(model) {
					t.Fatalf("step %d: len %d, model %d", step, s.len(), len(model))
				}
				if step%97 == 0 || step == tc.steps-1 {
					if got := s.entries(); len(got)+len(model) > 0 && !reflect.DeepEqual(got, model) {
						t.Fatalf("step %d: entries differ from the model (%d vs %d)", step, len(got), len(model))
					}
				}
				if holes := len(s.es) - s.live; holes >= minHoles && holes > s.live {
					t.Fatalf("step %d: %d holes for %d entries not reclaimed", step, holes, s.live)
				}
			}
			if tc.compacts && compactions == 0 {
				t.Error("no compaction happened")
			}
		})
	}
}

// maxSetBytesPerEntry bounds the heap the Store's copy of the table takes
// per registration, beyond the strings it shares with the registry. The
// daemon holds it beside the registry for its whole life; with 10,000
// registrations it was 1.8 MB (container/list, boxed entries, a map of
// slices), about 180 bytes each.
const maxSetBytesPerEntry = 100

func TestEntrySetBytesPerEntry(t *testing.T) {
	const n = 10000
	es := make([]Entry, n)
	for i := range es {
		es[i] = ent(0x2f000000+uint32(i), 1, "tcp", "0.0.0.0.1.1", "0")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := newEntrySet(nil)
	for i := range es {
		s.apply(OpSet, &es[i])
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	runtime.KeepAlive(s)
	runtime.KeepAlive(es)
	t.Logf("%d bytes per entry", per)
	if per > maxSetBytesPerEntry {
		t.Errorf("entry set takes %d bytes per registration, budget %d", per, maxSetBytesPerEntry)
	}
}

// maxSetBytesAfterChurn bounds the heap the entry set keeps once 10,000
// registrations were set and then unset: compact builds a new index too
// (a Go map keeps the room it grew to).
const maxSetBytesAfterChurn = 32 << 10

func TestEntrySetBytesAfterChurn(t *testing.T) {
	const n = 10000
	es := make([]Entry, n)
	for i := range es {
		es[i] = ent(0x2f000000+uint32(i), 1, "tcp", "0.0.0.0.1.1", "0")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := newEntrySet(nil)
	for round := 0; round < 2; round++ {
		for i := range es {
			s.apply(OpSet, &es[i])
		}
		for i := range es {
			s.apply(OpUnset, &es[i])
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	got := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	runtime.KeepAlive(s)
	runtime.KeepAlive(es)
	t.Logf("%d bytes kept after 10,000 SETs and UNSETs, twice", got)
	if s.len() != 0 {
		t.Fatalf("%d entries left", s.len())
	}
	if got > maxSetBytesAfterChurn {
		t.Errorf("the empty entry set keeps %d heap bytes after 10,000 registrations came and went, budget %d", got, maxSetBytesAfterChurn)
	}
}

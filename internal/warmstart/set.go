package warmstart

// entrySet is the ordered registration list the journal describes, with
// the replay rules of the registry:
//   - SET appends e unless an entry with the same prog, vers and netid
//     (netid compared case-insensitively, as find_service) exists;
//   - UNSET removes every entry with e's prog and vers whose netid equals
//     e.Netid case-insensitively, or every netid when e.Netid is "".
//     The registry journals an UNSET only after its owner check passed, so
//     e's Addr and Owner are not compared.
//
// Both are O(netids registered for that prog and vers).
//
// The daemon holds this copy beside the registry's, so it is kept small:
// the entries in one slice (their strings are the registry's own), a 4-byte
// link per entry chaining those of one (prog, vers), and one map slot per
// (prog, vers) — about 80 bytes per registration, against 180 with a
// container/list element, a boxed Entry and a map of slices (10,000
// registrations: 1.8 → 0.8 MB of heap). A removed entry leaves a hole that
// compact reclaims once holes outnumber entries.
type entrySet struct {
	es   []Entry      // registration order; es[i] is a hole when next[i] == hole
	next []int32      // next slot of the same (prog, vers), chainEnd at the last
	idx  map[pv]int32 // (prog, vers) → its first slot
	live int          // entries that are not holes
}

type pv struct{ prog, vers uint32 }

const (
	chainEnd int32 = -1
	hole     int32 = -2
	// minHoles: holes are reclaimed only past this many, so that a small
	// table churning is not copied on every UNSET.
	minHoles = 64
)

// maxSlots bounds the slots an int32 link can name. The set never comes
// near it: slots are at most twice the entries plus minHoles, and the
// entries are the registry's (2^30 of them would take over 60 GB here
// alone). apply checks it rather than wrap.
const maxSlots = 1<<31 - 1

func newEntrySet(es []Entry) *entrySet {
	s := &entrySet{
		es:   make([]Entry, 0, len(es)),
		next: make([]int32, 0, len(es)),
		idx:  make(map[pv]int32, len(es)),
	}
	for i := range es {
		s.apply(OpSet, &es[i])
	}
	return s
}

func (s *entrySet) len() int { return s.live }

func (s *entrySet) apply(op Op, e *Entry) {
	if op == OpSet && len(s.es) >= maxSlots {
		s.compact()
		if len(s.es) >= maxSlots {
			panic("warmstart: entry set past 2^31 slots")
		}
	}
	k := pv{e.Prog, e.Vers}
	first, found := s.idx[k]
	switch op {
	case OpSet:
		last := chainEnd
		if found {
			for i := first; i != chainEnd; i = s.next[i] {
				if equalFoldASCII(s.es[i].Netid, e.Netid) {
					return
				}
				last = i
			}
		}
		n := int32(len(s.es))
		s.es = append(s.es, *e)
		s.next = append(s.next, chainEnd)
		if last == chainEnd {
			s.idx[k] = n
		} else {
			s.next[last] = n
		}
		s.live++
	case OpUnset:
		if !found {
			return
		}
		head, prev := chainEnd, chainEnd
		for i := first; i != chainEnd; {
			nx := s.next[i]
			if e.Netid == "" || equalFoldASCII(s.es[i].Netid, e.Netid) {
				s.es[i], s.next[i] = Entry{}, hole // let the strings go
				s.live--
			} else {
				if prev == chainEnd {
					head = i
				} else {
					s.next[prev] = i
				}
				prev = i
			}
			i = nx
		}
		if prev == chainEnd {
			delete(s.idx, k)
		} else {
			s.next[prev] = chainEnd
			s.idx[k] = head
		}
		if holes := len(s.es) - s.live; holes >= minHoles && holes > s.live {
			s.compact()
		}
	}
}

// compact drops the holes, keeping the order; O(slots).
func (s *entrySet) compact() {
	pos := make([]int32, len(s.es)) // old slot → new slot
	es := make([]Entry, 0, s.live)
	next := make([]int32, 0, s.live)
	for i := range s.es {
		if s.next[i] != hole {
			pos[i] = int32(len(es))
			es = append(es, s.es[i])
		}
	}
	for i := range s.es {
		switch nx := s.next[i]; nx {
		case hole:
		case chainEnd:
			next = append(next, chainEnd)
		default:
			next = append(next, pos[nx])
		}
	}
	// A new index, not the old one updated: a Go map keeps the room it
	// grew to, and compact follows the removal of most entries (10,000
	// registrations set and unset kept 186 KB of empty index).
	idx := make(map[pv]int32, len(s.idx))
	for k, first := range s.idx {
		idx[k] = pos[first]
	}
	s.es, s.next, s.idx = es, next, idx
}

func (s *entrySet) entries() []Entry {
	es := make([]Entry, 0, s.live)
	for i := range s.es {
		if s.next[i] != hole {
			es = append(es, s.es[i])
		}
	}
	return es
}

// equalFoldASCII compares ignoring the case of ASCII letters only, as
// strcasecmp in the C locale.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

package warmstart

import "container/list"

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
type entrySet struct {
	l list.List // of Entry, in registration order
	// idx finds a (prog, vers)'s entries, one per netid: a short slice
	// rather than a map per key (a map costs hundreds of bytes, and most
	// programs register one to four netids).
	idx map[pv][]*list.Element
}

type pv struct{ prog, vers uint32 }

func newEntrySet(es []Entry) *entrySet {
	s := &entrySet{idx: make(map[pv][]*list.Element, len(es))}
	for i := range es {
		s.apply(OpSet, &es[i])
	}
	return s
}

func (s *entrySet) len() int { return s.l.Len() }

func (s *entrySet) apply(op Op, e *Entry) {
	k := pv{e.Prog, e.Vers}
	els := s.idx[k]
	switch op {
	case OpSet:
		for _, el := range els {
			if equalFoldASCII(el.Value.(Entry).Netid, e.Netid) {
				return
			}
		}
		s.idx[k] = append(els, s.l.PushBack(*e))
	case OpUnset:
		kept := els[:0]
		for _, el := range els {
			if e.Netid == "" || equalFoldASCII(el.Value.(Entry).Netid, e.Netid) {
				s.l.Remove(el)
			} else {
				kept = append(kept, el)
			}
		}
		clear(els[len(kept):])
		if len(kept) == 0 {
			delete(s.idx, k)
		} else {
			s.idx[k] = kept
		}
	}
}

func (s *entrySet) entries() []Entry {
	es := make([]Entry, 0, s.l.Len())
	for el := s.l.Front(); el != nil; el = el.Next() {
		es = append(es, el.Value.(Entry))
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

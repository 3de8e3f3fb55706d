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
	l   list.List // of Entry, in registration order
	idx map[pv]map[string]*list.Element
}

type pv struct{ prog, vers uint32 }

func newEntrySet(es []Entry) *entrySet {
	s := &entrySet{idx: make(map[pv]map[string]*list.Element)}
	for i := range es {
		s.apply(OpSet, &es[i])
	}
	return s
}

func (s *entrySet) len() int { return s.l.Len() }

func (s *entrySet) apply(op Op, e *Entry) {
	k := pv{e.Prog, e.Vers}
	switch op {
	case OpSet:
		m := s.idx[k]
		nk := foldNetid(e.Netid)
		if _, dup := m[nk]; dup {
			return
		}
		if m == nil {
			m = make(map[string]*list.Element, 2)
			s.idx[k] = m
		}
		m[nk] = s.l.PushBack(*e)
	case OpUnset:
		m := s.idx[k]
		if e.Netid == "" {
			for _, el := range m {
				s.l.Remove(el)
			}
			delete(s.idx, k)
			return
		}
		nk := foldNetid(e.Netid)
		if el, ok := m[nk]; ok {
			s.l.Remove(el)
			delete(m, nk)
			if len(m) == 0 {
				delete(s.idx, k)
			}
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

// foldNetid lower-cases ASCII letters only, as strcasecmp in the C locale.
func foldNetid(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

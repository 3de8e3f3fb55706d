package registry

// An entry lives in up to four doubly linked chains at once, one per index,
// each in master (registration) order. Removing it is O(1) in every chain.
const (
	lkMaster = iota // the master list: every entry
	lkNetid         // entries of one (prog, folded netid)
	lkPV            // entries of one (prog, vers)
	lkV2            // v2 view: entries of one (prog, protocol)
	nLinks
)

type link struct{ prev, next *node }

// node is one registration: 128 bytes with its links (the folded netid is
// not kept: it is the netid itself but for upper-case letters, and is
// computed again on removal).
type node struct {
	e     Entry
	port  uint32 // v2 port when prot != 0
	prot  uint8  // v2 protocol (6 or 17); 0 when not in the v2 view
	links [nLinks]link
}

// chain is the master list: an intrusive list over link lkMaster.
type chain struct {
	head, tail *node
	n          int
}

func (c *chain) pushBack(k int, n *node) {
	pushAfter(k, c.tail, n)
	if c.tail == nil {
		c.head = n
	}
	c.tail = n
	c.n++
}

func (c *chain) remove(k int, n *node) {
	l := n.links[k]
	if l.prev == nil {
		c.head = l.next
	}
	if l.next == nil {
		c.tail = l.prev
	}
	unlink(k, n)
	c.n--
}

// pushAfter links n after tail (nil: n starts a chain) on link k.
func pushAfter(k int, tail, n *node) {
	n.links[k] = link{prev: tail}
	if tail != nil {
		tail.links[k].next = n
	}
}

// unlink takes n out of its chain on link k.
func unlink(k int, n *node) {
	l := n.links[k]
	if l.prev != nil {
		l.prev.links[k].next = l.next
	}
	if l.next != nil {
		l.next.links[k].prev = l.prev
	}
	n.links[k] = link{}
}

// head returns the first node of the chain on link k that ends at tail.
func head(k int, tail *node) *node {
	for tail != nil && tail.links[k].prev != nil {
		tail = tail.links[k].prev
	}
	return tail
}

// tails is an index of chains over link k, each known by its last node:
// the index holds no per-chain allocation, only a map slot (a struct of
// head, tail and count per chain and per group cost 80 bytes a
// registration at 10,000 registrations). A chain is absent when empty.
//
// A Go map never gives back the room it grew to: after a burst of
// registrations is removed, the index is rebuilt at its new size once it
// holds under a quarter of its peak (10,000 registrations set and unset
// left 554 KB of empty index). The copy is O(chains) and
// comes after at least three times as many removals, so it adds O(1) to
// each.
type tails[K comparable] struct {
	k    int
	last map[K]*node
	peak int // the most chains since the map was made
}

// shrinkMin is the peak below which an index is never rebuilt: a map of
// 1,024 slots is about 30 KB.
const shrinkMin = 1024

func newTails[K comparable](k int) tails[K] { return tails[K]{k: k, last: make(map[K]*node)} }

func (ts *tails[K]) push(key K, n *node) {
	pushAfter(ts.k, ts.last[key], n)
	ts.last[key] = n
	ts.peak = max(ts.peak, len(ts.last))
}

func (ts *tails[K]) remove(key K, n *node) {
	prev := n.links[ts.k].prev
	unlink(ts.k, n)
	if ts.last[key] == n {
		if prev != nil {
			ts.last[key] = prev
		} else {
			delete(ts.last, key)
			ts.shrink()
		}
	}
}

// shrink rebuilds the index at its size once it holds under a quarter of
// its peak.
func (ts *tails[K]) shrink() {
	if ts.peak < shrinkMin || len(ts.last) >= ts.peak/4 {
		return
	}
	m := make(map[K]*node, len(ts.last))
	for k, n := range ts.last {
		m[k] = n
	}
	ts.last, ts.peak = m, len(m)
}

// groups is an index of groups: chains whose members have distinct
// versions, the entries of one (prog, netid) or of one v2 (prog, protocol).
// Almost every group holds a handful of versions, so a lookup walks the
// chain back from its last node; a group past groupMapMin entries also gets
// a map by version in big, which bounds the walk (a program may register
// thousands of versions) without costing every program a map.
type groups[K comparable] struct {
	tails[K]
	big map[K]map[uint32]*node // exactly the groups past groupMapMin entries
}

// groupMapMin is the size past which a group indexes its versions.
const groupMapMin = 8

func newGroups[K comparable](k int) *groups[K] { return &groups[K]{tails: newTails[K](k)} }

func (gs *groups[K]) add(key K, n *node) {
	if vm := gs.big[key]; vm != nil {
		gs.push(key, n)
		vm[n.e.Vers] = n
		return
	}
	gs.push(key, n)
	cnt := 0
	for m := n; m != nil && cnt <= groupMapMin; m = m.links[gs.k].prev {
		cnt++
	}
	if cnt > groupMapMin {
		vm := make(map[uint32]*node, cnt)
		for m := n; m != nil; m = m.links[gs.k].prev {
			vm[m.e.Vers] = m
		}
		if gs.big == nil {
			gs.big = make(map[K]map[uint32]*node)
		}
		gs.big[key] = vm
	}
}

func (gs *groups[K]) del(key K, n *node) {
	if vm := gs.big[key]; vm != nil {
		delete(vm, n.e.Vers)
		if len(vm) <= groupMapMin {
			delete(gs.big, key)
		}
	}
	gs.remove(key, n)
}

// get returns the group's entry with version vers (nil if none) and the
// group's last entry (nil when there is no such group).
func (gs *groups[K]) get(key K, vers uint32) (n, last *node) {
	last = gs.last[key]
	i := 0
	for m := last; m != nil; m = m.links[gs.k].prev {
		if m.e.Vers == vers {
			return m, last
		}
		if i++; i == groupMapMin && m.links[gs.k].prev != nil {
			return gs.big[key][vers], last
		}
	}
	return nil, last
}

// find is the reference's find_service over one group: the entry with the
// exact version, else the last one registered; nil when there is no group.
func (gs *groups[K]) find(key K, vers uint32) *node {
	n, last := gs.get(key, vers)
	if n == nil {
		n = last
	}
	return n
}

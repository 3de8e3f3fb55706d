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

type node struct {
	e     Entry
	key   string // foldKey(e.Netid)
	v2    bool   // part of the v2 view
	prot  uint32 // v2 protocol (6 or 17) when v2
	port  uint32 // v2 port when v2
	links [nLinks]link
}

// chain is one intrusive list over link k of its nodes.
type chain struct {
	head, tail *node
	n          int
}

func (c *chain) pushBack(k int, n *node) {
	n.links[k] = link{prev: c.tail}
	if c.tail == nil {
		c.head = n
	} else {
		c.tail.links[k].next = n
	}
	c.tail = n
	c.n++
}

func (c *chain) remove(k int, n *node) {
	l := n.links[k]
	if l.prev == nil {
		c.head = l.next
	} else {
		l.prev.links[k].next = l.next
	}
	if l.next == nil {
		c.tail = l.prev
	} else {
		l.next.links[k].prev = l.prev
	}
	n.links[k] = link{}
	c.n--
}

// group is a chain whose members have distinct versions: the entries of
// one (prog, netid) or of one v2 (prog, protocol). Almost every group holds
// a handful of versions, so a lookup walks the chain; a map by version is
// built only past groupMapMin entries, which bounds the walk (a program may
// register thousands of versions) without costing every program a map
// (two maps per registration were most of the table's memory).
type group struct {
	chain
	k      int              // the link of this chain
	byVers map[uint32]*node // nil until the group exceeds groupMapMin
}

// groupMapMin is the size past which a group indexes its versions.
const groupMapMin = 8

func newGroup(k int) *group { return &group{k: k} }

func (g *group) add(n *node) {
	g.pushBack(g.k, n)
	if g.byVers != nil {
		g.byVers[n.e.Vers] = n
	} else if g.n > groupMapMin {
		g.byVers = make(map[uint32]*node, g.n)
		for m := g.head; m != nil; m = m.links[g.k].next {
			g.byVers[m.e.Vers] = m
		}
	}
}

func (g *group) del(n *node) {
	g.remove(g.k, n)
	if g.byVers != nil {
		delete(g.byVers, n.e.Vers)
	}
}

// get returns the entry with version vers, or nil.
func (g *group) get(vers uint32) *node {
	if g.byVers != nil {
		return g.byVers[vers]
	}
	for n := g.head; n != nil; n = n.links[g.k].next {
		if n.e.Vers == vers {
			return n
		}
	}
	return nil
}

// find is the reference's find_service over one group: the entry with the
// exact version, else the last one registered.
func (g *group) find(vers uint32) *node {
	if n := g.get(vers); n != nil {
		return n
	}
	return g.tail
}

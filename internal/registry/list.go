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

// group is a chain whose members have distinct versions, with an index by
// version: the entries of one (prog, netid) or of one v2 (prog, protocol).
type group struct {
	chain
	byVers map[uint32]*node
}

func newGroup() *group { return &group{byVers: make(map[uint32]*node)} }

func (g *group) add(k int, n *node) {
	g.pushBack(k, n)
	g.byVers[n.e.Vers] = n
}

func (g *group) del(k int, n *node) {
	g.remove(k, n)
	delete(g.byVers, n.e.Vers)
}

// find is the reference's find_service over one group: the entry with the
// exact version, else the last one registered.
func (g *group) find(vers uint32) *node {
	if n := g.byVers[vers]; n != nil {
		return n
	}
	return g.tail
}

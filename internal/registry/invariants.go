package registry

import (
	"bytes"
	"errors"
	"fmt"
)

// CheckInvariants verifies the table's internal consistency: the master
// list is well linked; every entry is in exactly the indexes its fields
// imply; each index chain holds its entries in master order; the v2 view is
// exactly what the master list implies; no two entries share
// (prog, vers, folded netid); the cached DUMP bodies, when present, equal a
// fresh encoding. It is O(n) and meant for tests.
func (t *Table) CheckInvariants() error {
	t.mu.RLock()
	defer t.mu.RUnlock()

	pos := make(map[*node]int, t.all.n)
	var prev *node
	i := 0
	for n := t.all.head; n != nil; n = n.links[lkMaster].next {
		if n.links[lkMaster].prev != prev {
			return fmt.Errorf("registry: master list: bad back link at %d", i)
		}
		if _, dup := pos[n]; dup {
			return errors.New("registry: master list: cycle")
		}
		pos[n] = i
		prev = n
		i++
	}
	if t.all.tail != prev || i != t.all.n {
		return fmt.Errorf("registry: master list: tail or count (%d entries, n=%d)", i, t.all.n)
	}

	type ident struct {
		prog, vers uint32
		key        string
	}
	seen := make(map[ident]bool, i)
	nV2, size := 0, 0
	for n := t.all.head; n != nil; n = n.links[lkMaster].next {
		e := &n.e
		if n.key != foldKey(e.Netid) {
			return fmt.Errorf("registry: %+v: key %q", *e, n.key)
		}
		id := ident{e.Prog, e.Vers, n.key}
		if seen[id] {
			return fmt.Errorf("registry: %+v: duplicate (prog, vers, netid)", *e)
		}
		seen[id] = true
		if g := t.byNetid[n.key][e.Prog]; g == nil || g.get(e.Vers) != n {
			return fmt.Errorf("registry: %+v: missing from the netid index", *e)
		}
		prot, port, ok := v2Port(e.Netid, e.Addr)
		if ok != n.v2 || (ok && (prot != n.prot || port != n.port)) {
			return fmt.Errorf("registry: %+v: v2 view (%v %d %d) want (%v %d %d)", *e, n.v2, n.prot, n.port, ok, prot, port)
		}
		if ok {
			nV2++
			if g := t.v2[pvKey(e.Prog, prot)]; g == nil || g.get(e.Vers) != n {
				return fmt.Errorf("registry: %+v: missing from the v2 index", *e)
			}
		}
		size += rpcbSize(e)
	}
	if nV2 != t.nV2 {
		return fmt.Errorf("registry: v2 count %d, want %d", t.nV2, nV2)
	}
	if size != t.sizeV3 {
		return fmt.Errorf("registry: v3 size %d, want %d", t.sizeV3, size)
	}

	// Every chain: well linked, in master order, members matching its key.
	checkChain := func(what string, k int, c *chain, match func(*node) bool) error {
		if c.n == 0 {
			return fmt.Errorf("registry: %s: empty chain kept", what)
		}
		var prev *node
		cnt, last := 0, -1
		for n := c.head; n != nil; n = n.links[k].next {
			if n.links[k].prev != prev {
				return fmt.Errorf("registry: %s: bad back link", what)
			}
			p, ok := pos[n]
			if !ok {
				return fmt.Errorf("registry: %s: entry not in the master list", what)
			}
			if p <= last {
				return fmt.Errorf("registry: %s: not in master order", what)
			}
			if !match(n) {
				return fmt.Errorf("registry: %s: %+v does not belong", what, n.e)
			}
			last = p
			prev = n
			cnt++
		}
		if c.tail != prev || cnt != c.n {
			return fmt.Errorf("registry: %s: tail or count", what)
		}
		return nil
	}
	total := 0
	for key, progs := range t.byNetid {
		if len(progs) == 0 {
			return fmt.Errorf("registry: netid %q: empty map kept", key)
		}
		for prog, g := range progs {
			what := fmt.Sprintf("netid index (%q, %d)", key, prog)
			if err := checkChain(what, lkNetid, &g.chain, func(n *node) bool { return n.key == key && n.e.Prog == prog }); err != nil {
				return err
			}
			if g.byVers != nil && len(g.byVers) != g.n || g.byVers == nil && g.n > groupMapMin {
				return fmt.Errorf("registry: %s: %d versions for %d entries", what, len(g.byVers), g.n)
			}
			total += g.n
		}
	}
	if total != t.all.n {
		return fmt.Errorf("registry: netid index holds %d entries, want %d", total, t.all.n)
	}
	total = 0
	for pk, c := range t.byPV {
		prog, vers := uint32(pk>>32), uint32(pk)
		if err := checkChain(fmt.Sprintf("prog/vers index (%d, %d)", prog, vers), lkPV, c, func(n *node) bool { return n.e.Prog == prog && n.e.Vers == vers }); err != nil {
			return err
		}
		total += c.n
	}
	if total != t.all.n {
		return fmt.Errorf("registry: prog/vers index holds %d entries, want %d", total, t.all.n)
	}
	total = 0
	for vk, g := range t.v2 {
		prog, prot := uint32(vk>>32), uint32(vk)
		what := fmt.Sprintf("v2 index (%d, %d)", prog, prot)
		if err := checkChain(what, lkV2, &g.chain, func(n *node) bool { return n.v2 && n.e.Prog == prog && n.prot == prot }); err != nil {
			return err
		}
		if g.byVers != nil && len(g.byVers) != g.n || g.byVers == nil && g.n > groupMapMin {
			return fmt.Errorf("registry: %s: %d versions for %d entries", what, len(g.byVers), g.n)
		}
		total += g.n
	}
	if total != nV2 {
		return fmt.Errorf("registry: v2 index holds %d entries, want %d", total, nV2)
	}

	if p := t.dumpV2.Load(); p != nil && !bytes.Equal(*p, t.encodeDumpV2()) {
		return errors.New("registry: stale v2 DUMP cache")
	}
	if p := t.dumpV3.Load(); p != nil && !bytes.Equal(*p, t.encodeDumpV3()) {
		return errors.New("registry: stale v3 DUMP cache")
	}
	return nil
}

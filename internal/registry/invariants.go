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
		key := foldKey(e.Netid)
		id := ident{e.Prog, e.Vers, key}
		if seen[id] {
			return fmt.Errorf("registry: %+v: duplicate (prog, vers, netid)", *e)
		}
		seen[id] = true
		if m, _ := t.get(e.Prog, e.Vers, key); m != n {
			return fmt.Errorf("registry: %+v: missing from the netid index", *e)
		}
		prot, port, ok := v2Port(e.Netid, e.Addr)
		if ok != (n.prot != 0) || (ok && (prot != uint32(n.prot) || port != n.port)) {
			return fmt.Errorf("registry: %+v: v2 view (%d %d) want (%v %d %d)", *e, n.prot, n.port, ok, prot, port)
		}
		if ok {
			nV2++
			if m, _ := t.v2.get(pvKey(e.Prog, prot), e.Vers); m != n {
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

	// Every chain, known by its last node: well linked, in master order,
	// members matching its key. It returns the chain's length.
	checkChain := func(what string, k int, last *node, match func(*node) bool) (int, error) {
		if last == nil {
			return 0, fmt.Errorf("registry: %s: empty chain kept", what)
		}
		if last.links[k].next != nil {
			return 0, fmt.Errorf("registry: %s: indexed node is not the last", what)
		}
		var prev *node
		cnt, lastPos := 0, -1
		for n := head(k, last); n != nil; n = n.links[k].next {
			if n.links[k].prev != prev {
				return 0, fmt.Errorf("registry: %s: bad back link", what)
			}
			p, ok := pos[n]
			if !ok {
				return 0, fmt.Errorf("registry: %s: entry not in the master list", what)
			}
			if p <= lastPos {
				return 0, fmt.Errorf("registry: %s: not in master order", what)
			}
			if !match(n) {
				return 0, fmt.Errorf("registry: %s: %+v does not belong", what, n.e)
			}
			lastPos = p
			prev = n
			cnt++
		}
		if prev != last {
			return 0, fmt.Errorf("registry: %s: chain does not end at its indexed node", what)
		}
		return cnt, nil
	}
	// A group has a version map exactly when it is past groupMapMin
	// entries, and the map holds exactly its members.
	checkBig := func(what string, k int, last *node, cnt int, vm map[uint32]*node) error {
		if (vm != nil) != (cnt > groupMapMin) {
			return fmt.Errorf("registry: %s: version map %v for %d entries", what, vm != nil, cnt)
		}
		if vm == nil {
			return nil
		}
		if len(vm) != cnt {
			return fmt.Errorf("registry: %s: %d versions mapped for %d entries", what, len(vm), cnt)
		}
		for n := last; n != nil; n = n.links[k].prev {
			if vm[n.e.Vers] != n {
				return fmt.Errorf("registry: %s: version %d not mapped to its entry", what, n.e.Vers)
			}
		}
		return nil
	}
	total := 0
	for key, gs := range t.byNetid {
		if len(gs.last) == 0 {
			return fmt.Errorf("registry: netid %q: empty index kept", key)
		}
		for prog := range gs.big {
			if gs.last[prog] == nil {
				return fmt.Errorf("registry: netid %q: version map of removed group %d kept", key, prog)
			}
		}
		for prog, last := range gs.last {
			what := fmt.Sprintf("netid index (%q, %d)", key, prog)
			cnt, err := checkChain(what, lkNetid, last, func(n *node) bool { return foldKey(n.e.Netid) == key && n.e.Prog == prog })
			if err != nil {
				return err
			}
			if err := checkBig(what, lkNetid, last, cnt, gs.big[prog]); err != nil {
				return err
			}
			total += cnt
		}
	}
	if total != t.all.n {
		return fmt.Errorf("registry: netid index holds %d entries, want %d", total, t.all.n)
	}
	total = 0
	for pk, last := range t.byPV.last {
		prog, vers := uint32(pk>>32), uint32(pk)
		cnt, err := checkChain(fmt.Sprintf("prog/vers index (%d, %d)", prog, vers), lkPV, last, func(n *node) bool { return n.e.Prog == prog && n.e.Vers == vers })
		if err != nil {
			return err
		}
		total += cnt
	}
	if total != t.all.n {
		return fmt.Errorf("registry: prog/vers index holds %d entries, want %d", total, t.all.n)
	}
	total = 0
	for vk := range t.v2.big {
		if t.v2.last[vk] == nil {
			return fmt.Errorf("registry: v2 index: version map of removed group %#x kept", vk)
		}
	}
	for vk, last := range t.v2.last {
		prog, prot := uint32(vk>>32), uint32(vk)
		what := fmt.Sprintf("v2 index (%d, %d)", prog, prot)
		cnt, err := checkChain(what, lkV2, last, func(n *node) bool { return uint32(n.prot) == prot && n.e.Prog == prog })
		if err != nil {
			return err
		}
		if err := checkBig(what, lkV2, last, cnt, t.v2.big[vk]); err != nil {
			return err
		}
		total += cnt
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

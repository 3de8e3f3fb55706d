package registry

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/openrpcbind/rpcbind/xdr"
)

// Program 100000 and the IP protocol numbers of the v2 view (RFC 1833 §3).
const (
	ProgRPCB  = 100000 // PMAPPROG / RPCBPROG
	protoTCP  = 6      // IPPROTO_TCP
	protoUDP  = 17     // IPPROTO_UDP
	Superuser = "superuser"
)

// Entry is one registration (rpcb): the owner is the one computed by the
// daemon when it was set, never the client's r_owner.
type Entry struct {
	Prog, Vers uint32
	Netid      string
	Addr       string // universal address, stored and compared as a string
	Owner      string
}

// Op says what changed, for the observer.
type Op uint8

const (
	OpSet   Op = 1 // an entry was appended
	OpUnset Op = 2 // an entry was removed
)

func (o Op) String() string {
	switch o {
	case OpSet:
		return "set"
	case OpUnset:
		return "unset"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Table is the registration table. It is safe for concurrent use: lookups
// and DUMPs share a read lock, changes take the write lock.
type Table struct {
	mu      sync.RWMutex
	all     chain                      // master list, registration order
	byNetid map[string]*groups[uint32] // folded netid → prog → versions
	byPV    tails[uint64]              // prog<<32|vers → entries (all netids)
	v2      *groups[uint64]            // prog<<32|protocol → v2 versions
	nV2     int                        // entries in the v2 view
	sizeV3  int                        // encoded size of the v3/v4 DUMP body

	// Cached DUMP bodies; nil when stale. Set under the read lock (every
	// reader would build the same bytes), cleared under the write lock.
	dumpV2, dumpV3 atomic.Pointer[[]byte]

	observer func(op Op, e Entry) error
	onError  func(op Op, e Entry, err error)
}

// New returns a table holding self, rpcbind's own entries (see
// SelfEntries), in that order. The observer is not told about them.
func New(self []Entry) *Table {
	t := &Table{
		byNetid: make(map[string]*groups[uint32]),
		byPV:    newTails[uint64](lkPV),
		v2:      newGroups[uint64](lkV2),
	}
	for _, e := range self {
		t.load(e)
	}
	return t
}

// SelfEntries builds rpcbind's own registrations (program 100000) in the
// order the reference's DUMP shows on a fresh daemon (spec §1.5):
// tcp6 v4, v3; udp6 v4, v3; tcp v4, v3, v2; udp v4, v3, v2; local v4, v3,
// all owned by "superuser". A transport whose address is "" is left out.
// There are no v2 entries for tcp6, udp6 and local, as in the reference.
func SelfEntries(tcp6Addr, udp6Addr, tcpAddr, udpAddr, localAddr string) []Entry {
	var es []Entry
	add := func(netid, addr string, vers ...uint32) {
		if addr == "" {
			return
		}
		for _, v := range vers {
			es = append(es, Entry{Prog: ProgRPCB, Vers: v, Netid: netid, Addr: addr, Owner: Superuser})
		}
	}
	add("tcp6", tcp6Addr, 4, 3)
	add("udp6", udp6Addr, 4, 3)
	add("tcp", tcpAddr, 4, 3, 2)
	add("udp", udpAddr, 4, 3, 2)
	add("local", localAddr, 4, 3)
	return es
}

// SetObserver installs fn, called under the write lock for every entry
// appended (OpSet) or removed (OpUnset), after the change is made and before
// the call that made it returns — the place to journal it. fn must not call
// back into the table. An error from fn does not undo the change (DECISIONS:
// a persistence failure keeps serving from memory); it goes to the OnError
// handler.
func (t *Table) SetObserver(fn func(op Op, e Entry) error) {
	t.mu.Lock()
	t.observer = fn
	t.mu.Unlock()
}

// OnError installs fn, which receives the errors the observer returns. It is
// called under the write lock and must not call back into the table.
func (t *Table) OnError(fn func(op Op, e Entry, err error)) {
	t.mu.Lock()
	t.onError = fn
	t.mu.Unlock()
}

func (t *Table) notify(op Op, e Entry) {
	if t.observer == nil {
		return
	}
	if err := t.observer(op, e); err != nil && t.onError != nil {
		t.onError(op, e, err)
	}
}

// Load appends saved registrations (warm start) in order, without telling
// the observer. Entries of program 100000 are skipped in favour of the
// freshly built self entries (spec §2.4), and so is an entry whose
// (prog, vers, netid) is already present, as a SET of it would not add it.
// It returns the number of entries added.
func (t *Table) Load(entries []Entry) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, e := range entries {
		if e.Prog == ProgRPCB {
			continue
		}
		if t.load(e) {
			n++
		}
	}
	return n
}

func (t *Table) load(e Entry) bool {
	e = cEntry(e)
	key := foldKey(e.Netid)
	if n, _ := t.get(e.Prog, e.Vers, key); n != nil {
		return false
	}
	t.insert(e, key)
	return true
}

func cEntry(e Entry) Entry {
	e.Netid, e.Addr, e.Owner = cString(e.Netid), cString(e.Addr), cString(e.Owner)
	return e
}

func pvKey(prog, vers uint32) uint64 { return uint64(prog)<<32 | uint64(vers) }

// get returns the entry of (prog, vers) on the folded netid key (nil if
// none) and the last entry of prog on it (nil when prog has none there).
func (t *Table) get(prog, vers uint32, key string) (n, last *node) {
	gs := t.byNetid[key]
	if gs == nil {
		return nil, nil
	}
	return gs.get(prog, vers)
}

func (t *Table) insert(e Entry, key string) {
	n := &node{e: e}
	t.all.pushBack(lkMaster, n)
	gs := t.byNetid[key]
	if gs == nil {
		gs = newGroups[uint32](lkNetid)
		t.byNetid[key] = gs
	}
	gs.add(e.Prog, n)
	t.byPV.push(pvKey(e.Prog, e.Vers), n)
	t.sizeV3 += rpcbSize(&n.e)
	t.dumpV3.Store(nil)
	if prot, port, ok := v2Port(e.Netid, e.Addr); ok {
		n.prot, n.port = uint8(prot), port
		t.v2.add(pvKey(e.Prog, prot), n)
		t.nV2++
		t.dumpV2.Store(nil)
	}
}

func (t *Table) delete(n *node) {
	e := &n.e
	t.all.remove(lkMaster, n)
	key := foldKey(e.Netid) // allocates only for a netid with upper case
	gs := t.byNetid[key]
	gs.del(e.Prog, n)
	if len(gs.last) == 0 {
		delete(t.byNetid, key)
	}
	t.byPV.remove(pvKey(e.Prog, e.Vers), n)
	t.sizeV3 -= rpcbSize(e)
	t.dumpV3.Store(nil)
	if n.prot != 0 {
		t.v2.del(pvKey(e.Prog, uint32(n.prot)), n)
		t.nV2--
		t.dumpV2.Store(nil)
	}
}

// Set registers e (v3/v4 SET, map_set). Nothing is ever overwritten: if an
// entry with the same prog, vers and netid (compared case-insensitively)
// exists, the answer is TRUE when its address is byte-identical (an
// idempotent re-registration, whatever the owner) and FALSE otherwise.
// Else e is appended and the answer is TRUE. There is no validation: empty
// or unknown netids and unparsable addresses are stored as given. Strings
// are cut at a NUL byte, as the reference stores C strings.
func (t *Table) Set(e Entry) bool {
	e = cEntry(e)
	key := foldKey(e.Netid)
	t.mu.Lock()
	defer t.mu.Unlock()
	if n, _ := t.get(e.Prog, e.Vers, key); n != nil {
		return n.e.Addr == e.Addr
	}
	t.insert(e, key)
	t.notify(OpSet, e)
	return true
}

// SetV2 is the portmapper v2 SET (pmapproc_change): protocol 6 registers on
// netid "tcp", 17 on "udp", anything else is FALSE. The address is
// "0.0.0.0.p1.p2" built from the port truncated to 16 bits (70000 is stored
// as 4464).
func (t *Table) SetV2(prog, vers, prot, port uint32, owner string) bool {
	var netid string
	switch prot {
	case protoTCP:
		netid = "tcp"
	case protoUDP:
		netid = "udp"
	default:
		return false
	}
	var buf [32]byte
	a := append(buf[:0], "0.0.0.0."...)
	a = strconv.AppendUint(a, uint64(port>>8&0xff), 10)
	a = append(a, '.')
	a = strconv.AppendUint(a, uint64(port&0xff), 10)
	return t.Set(Entry{Prog: prog, Vers: vers, Netid: netid, Addr: string(a), Owner: owner})
}

// Unset removes the registrations of (prog, vers) on netid, or on every
// netid when netid is "" (v3/v4 UNSET, map_unset); netids compare
// case-insensitively. It is all or nothing (DECISIONS "UNSET"): when the
// caller's owner is not "superuser" and any matching entry has another
// owner, nothing is removed and the answer is FALSE. Otherwise every match
// is removed and the answer is TRUE, also when nothing matched.
func (t *Table) Unset(prog, vers uint32, netid, owner string) bool {
	netid, owner = cString(netid), cString(owner)
	key := foldKey(netid)
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.unset(prog, vers, netid, key, owner)
}

func (t *Table) unset(prog, vers uint32, netid, key, owner string) bool {
	if netid != "" {
		n, _ := t.get(prog, vers, key)
		if n == nil {
			return true
		}
		if owner != Superuser && n.e.Owner != owner {
			return false
		}
		t.delete(n)
		t.notify(OpUnset, n.e)
		return true
	}
	first := head(lkPV, t.byPV.last[pvKey(prog, vers)])
	if first == nil {
		return true
	}
	if owner != Superuser {
		for n := first; n != nil; n = n.links[lkPV].next {
			if n.e.Owner != owner {
				return false
			}
		}
	}
	for n := first; n != nil; {
		next := n.links[lkPV].next
		t.delete(n)
		t.notify(OpUnset, n.e)
		n = next
	}
	return true
}

// UnsetV2 is the portmapper v2 UNSET: the protocol and port of the request
// are ignored; it runs Unset on "tcp" and on "udp" independently and
// answers the OR of the two, as the reference does. It never touches tcp6,
// udp6 or other netids.
func (t *Table) UnsetV2(prog, vers uint32, owner string) bool {
	owner = cString(owner)
	t.mu.Lock()
	defer t.mu.Unlock()
	a := t.unset(prog, vers, "tcp", "tcp", owner)
	b := t.unset(prog, vers, "udp", "udp", owner)
	return a || b
}

// GetPort is the portmapper v2 GETPORT over the v2 view
// (find_service_pmap): the port of (prog, vers, prot), else the port of
// the last registered entry of prog on that protocol (another version's
// port), else 0. Protocols other than 6 and 17 find nothing.
func (t *Table) GetPort(prog, vers, prot uint32) uint32 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := t.v2.find(pvKey(prog, prot), vers)
	if n == nil {
		return 0
	}
	return n.port
}

// foldBuf is the size of the stack buffer used to fold a netid that has
// upper-case letters before the lookup; transport netids are short and
// lower case, so this path is rare and longer netids may allocate.
const foldBuf = 64

// GetAddr looks up the registration of (prog, vers) on netid — the netid of
// the transport the request arrived on, not the request's r_netid — with
// the reference's find_service rule: netids compare case-insensitively, the
// exact version wins, and when exact is false (GETADDR, RPCB_ALLVERS) the
// last registered entry of prog on that netid stands in for a missing
// version. With exact (GETVERSADDR, RPCB_ONEVERS) only the exact version
// counts. It returns the registered uaddr, unmerged, and does not allocate.
func (t *Table) GetAddr(prog, vers uint32, netid []byte, exact bool) (addr string, ok bool) {
	var buf [foldBuf]byte
	k := foldBytes(buf[:0], netid)
	t.mu.RLock()
	defer t.mu.RUnlock()
	n, last := t.get(prog, vers, string(k))
	if n != nil {
		return n.e.Addr, true
	}
	if exact || last == nil {
		return "", false
	}
	return last.e.Addr, true
}

// Find returns the entry the reference's find_service(prog, vers, netid)
// returns: the exact version on netid (case-insensitive), else the last
// registered entry of prog on netid. Compare e.Vers with vers to tell the
// two apart (CALLIT/INDIRECT: PROG_MISMATCH). ok is false when prog has
// nothing on netid.
func (t *Table) Find(prog, vers uint32, netid string) (e Entry, ok bool) {
	key := foldKey(cString(netid))
	t.mu.RLock()
	defer t.mu.RUnlock()
	n, last := t.get(prog, vers, key)
	if n == nil {
		n = last
	}
	if n == nil {
		return Entry{}, false
	}
	return n.e, true
}

// VersRange returns the lowest and highest version of prog registered on
// netid (case-insensitive), for INDIRECT's PROG_MISMATCH. It replicates the
// reference's find_versions walk, including its use of 0 as "nothing seen
// yet" (a registered version 0 restarts the range). ok is false when prog
// has nothing on netid.
func (t *Table) VersRange(prog uint32, netid string) (low, high uint32, ok bool) {
	key := foldKey(cString(netid))
	t.mu.RLock()
	defer t.mu.RUnlock()
	_, last := t.get(prog, 0, key)
	if last == nil {
		return 0, 0, false
	}
	for n := head(lkNetid, last); n != nil; n = n.links[lkNetid].next {
		v := n.e.Vers
		switch {
		case low == 0:
			low, high = v, v
		case v < low:
			low = v
		case v > high:
			high = v
		}
	}
	return low, high, true
}

// ByProgVers calls fn, in registration order, for every entry of exactly
// (prog, vers) on any netid (GETADDRLIST). fn runs under the read lock and
// must not change the table.
func (t *Table) ByProgVers(prog, vers uint32, fn func(Entry)) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for n := head(lkPV, t.byPV.last[pvKey(prog, vers)]); n != nil; n = n.links[lkPV].next {
		fn(n.e)
	}
}

// Entries returns a copy of the master list in registration order.
func (t *Table) Entries() []Entry {
	t.mu.RLock()
	defer t.mu.RUnlock()
	es := make([]Entry, 0, t.all.n)
	for n := t.all.head; n != nil; n = n.links[lkMaster].next {
		es = append(es, n.e)
	}
	return es
}

// Len returns the number of registrations.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.all.n
}

// AppendDumpV2 appends the portmapper v2 DUMP result (pmaplist, RFC 1833
// §3.2: per entry "value follows" 1, prog, vers, prot, port; then 0): the
// v2 view in registration order. It does not allocate when the encoding is
// cached and b has room.
func (t *Table) AppendDumpV2(b []byte) []byte { return append(b, t.DumpV2()...) }

// AppendDumpV3 appends the rpcbind v3/v4 DUMP result (rpcblist_ptr, RFC 1833
// §2.2: per entry "value follows" 1, r_prog, r_vers, r_netid, r_addr,
// r_owner; then 0): the master list in registration order. It does not
// allocate when the encoding is cached and b has room.
func (t *Table) AppendDumpV3(b []byte) []byte { return append(b, t.DumpV3()...) }

// DumpV2 returns the cached encoding AppendDumpV2 appends. It is shared and
// immutable: a change builds a new one, so a transport may write it straight
// to a socket (writev) while the table changes. The caller must not modify
// it.
func (t *Table) DumpV2() []byte { return t.cachedDump(&t.dumpV2, t.encodeDumpV2) }

// DumpV3 is DumpV2 for the v3/v4 encoding.
func (t *Table) DumpV3() []byte { return t.cachedDump(&t.dumpV3, t.encodeDumpV3) }

func (t *Table) cachedDump(c *atomic.Pointer[[]byte], encode func() []byte) []byte {
	if p := c.Load(); p != nil {
		return *p // a change clears the pointer before it returns: no lock needed to read
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	p := c.Load()
	if p == nil {
		d := encode()
		p = &d
		c.Store(p)
	}
	return *p
}

func (t *Table) encodeDumpV2() []byte {
	b := make([]byte, 0, 20*t.nV2+4)
	for n := t.all.head; n != nil; n = n.links[lkMaster].next {
		if n.prot == 0 {
			continue
		}
		b = xdr.AppendUint32(b, 1)
		b = xdr.AppendUint32(b, n.e.Prog)
		b = xdr.AppendUint32(b, n.e.Vers)
		b = xdr.AppendUint32(b, uint32(n.prot))
		b = xdr.AppendUint32(b, n.port)
	}
	return xdr.AppendUint32(b, 0)
}

func (t *Table) encodeDumpV3() []byte {
	b := make([]byte, 0, t.sizeV3+4)
	for n := t.all.head; n != nil; n = n.links[lkMaster].next {
		b = xdr.AppendUint32(b, 1)
		b = xdr.AppendUint32(b, n.e.Prog)
		b = xdr.AppendUint32(b, n.e.Vers)
		b = xdr.AppendString(b, n.e.Netid)
		b = xdr.AppendString(b, n.e.Addr)
		b = xdr.AppendString(b, n.e.Owner)
	}
	return xdr.AppendUint32(b, 0)
}

func xdrStringSize(s string) int { return 4 + len(s) + xdr.Padding(len(s)) }

// rpcbSize is the encoded size of one rpcblist element.
func rpcbSize(e *Entry) int {
	return 12 + xdrStringSize(e.Netid) + xdrStringSize(e.Addr) + xdrStringSize(e.Owner)
}

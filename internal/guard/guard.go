package guard

import (
	"bytes"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/ratelimit"
	"github.com/openrpcbind/rpcbind/internal/registry"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
	"github.com/openrpcbind/rpcbind/xdr"
)

// DefaultMaxPerOwner caps the registrations one non-superuser owner (a uid
// on the local socket, or "unknown") may hold. A real service registers a
// handful of (prog, vers, netid) triples; rpc.statd, mountd and nfsd hold
// about 30 together. 1024 is far above any honest need and keeps a local
// user from growing the table (and every DUMP) without bound.
const DefaultMaxPerOwner = 1024

// DefaultMaxRegBytesPerOwner is the registration bytes one non-superuser
// owner may hold: the sum over its entries of len(netid) + len(addr) +
// len(owner) + RegEntryOverhead. An ordinary entry ("tcp",
// "0.0.0.0.8.1", "1000") counts about 50 bytes, so the whole count cap of
// 1,024 such entries is about 80 KB and fits with room to spare; what the
// budget stops is a few entries with 9,000-byte strings (a SET carries up
// to 9,000 bytes each of netid and addr), which the count cap alone lets
// grow the table, and every DUMP, to 1,024 x 18 KB. A local user holds at
// most two owners (its uid on the local socket, "unknown" over loopback
// from an unprivileged port), so it can add at most 512 KiB to the table.
const DefaultMaxRegBytesPerOwner = 256 << 10

// RegEntryOverhead is what one registration counts beyond its strings in
// the bytes budget: the fixed fields, as the DUMP carries them (prog,
// vers and three length words are 20 bytes) plus padding.
const RegEntryOverhead = 32

// PrivPort is IPPORT_RESERVED: CHECK_PORT protects the ports below it.
const PrivPort = 1024

// NFSPort is protected too: portmap 6.0's CHECK_PORT treats the NFS port
// as reserved (pmap_check.c: unreserved_port(p) is p >= IPPORT_RESERVED &&
// p != NFS_PORT), so an unprivileged user cannot pose as nfsd.
const NFSPort = 2049

// Handler is server.Handler (same method set; the guard does not import
// the transports).
type Handler interface {
	ServeRPC(out, req []byte, c *access.Caller) (reply []byte, send bool)
}

// tailHandler is server.TailHandler: the stream fast path that writes a
// shared DUMP encoding with writev. The guard keeps it when next has it.
type tailHandler interface {
	ServeRPCTail(out, req []byte, c *access.Caller) (reply, tail []byte, send bool)
}

// Config wires a Guard.
type Config struct {
	// Limiter bounds amplifying UDP replies; nil lets every reply pass.
	Limiter *ratelimit.Limiter
	// Table is the registration table the service uses (owner counts,
	// pruning). Required.
	Table *registry.Table
	// Insecure and HostAllowed are the service's (-i, hosts.allow/deny):
	// the SET policy applies only to a SET the service would accept, so a
	// denied caller still gets the service's AUTH_TOOWEAK.
	Insecure    bool
	HostAllowed func(c *access.Caller) bool
	// MaxPerOwner: 0 is DefaultMaxPerOwner; there is no "unlimited".
	MaxPerOwner int
	// MaxRegBytesPerOwner bounds a non-superuser owner's registrations in
	// bytes (see DefaultMaxRegBytesPerOwner, its value when 0).
	MaxRegBytesPerOwner int
	// CheckPort: a SET that would let any client derive a port in 1..1023
	// from the entry as served (v2: the port's low 16 bits; a uaddr: every
	// reader's arithmetic, see pmap.UaddrClientPorts) needs a superuser
	// caller; others get FALSE.
	CheckPort bool
	// Log receives refusals (the daemon's logger is rate-limited); nil
	// discards them. line is formatted in a buffer the guard reuses: it is
	// valid only during the call (copy it to keep it). A refused SET costs
	// no allocation when Log makes none.
	Log func(line []byte)
	// Now is the clock of the rate limiter; nil is time.Now.
	Now func() time.Time
}

// Stats counts what the guard did.
type Stats struct {
	Refused   atomic.Uint64 // UDP list calls answered AUTH_TOOWEAK (RefuseLists)
	Limited   atomic.Uint64 // amplifying UDP replies dropped
	OverCap   atomic.Uint64 // SETs refused: owner at MaxPerOwner
	OverBytes atomic.Uint64 // SETs refused: owner's bytes over MaxRegBytesPerOwner
	PortCheck atomic.Uint64 // SETs refused: CHECK_PORT
}

// Guard is a Handler decorator. It is safe for concurrent use.
type Guard struct {
	next Handler
	tail tailHandler
	cfg  Config
	Stat Stats

	mu     sync.Mutex
	owners map[string]holding // per owner, from Observe

	logMu  sync.Mutex // serialises refusal lines in logBuf
	logBuf []byte
	pruner *Pruner // nil unless pruning is on
}

// holding is what one owner holds in the table.
type holding struct {
	n     int // registrations
	bytes int // their strings plus RegEntryOverhead each
}

// entryBytes is e's charge against its owner's bytes budget.
func entryBytes(e *registry.Entry) int {
	return len(e.Netid) + len(e.Addr) + len(e.Owner) + RegEntryOverhead
}

// New returns a Guard in front of next. It counts the table's current
// entries per owner; install Observe in the table's observer chain so the
// counts follow every change.
func New(next Handler, cfg Config) *Guard {
	if cfg.MaxPerOwner <= 0 {
		cfg.MaxPerOwner = DefaultMaxPerOwner
	}
	if cfg.MaxRegBytesPerOwner <= 0 {
		cfg.MaxRegBytesPerOwner = DefaultMaxRegBytesPerOwner
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = func([]byte) {}
	}
	g := &Guard{next: next, cfg: cfg, owners: map[string]holding{}}
	g.tail, _ = next.(tailHandler)
	// The table as loaded (warm start included); Observe follows it from
	// here, every SET and UNSET (pruning too) at O(1).
	for _, e := range cfg.Table.Entries() {
		h := g.owners[e.Owner]
		h.n++
		h.bytes += entryBytes(&e)
		g.owners[e.Owner] = h
	}
	return g
}

// Observe keeps the per-owner counts and bytes (and the pruner's records)
// in step with the table; call it from the table's observer, under its
// lock.
func (g *Guard) Observe(op registry.Op, e registry.Entry) {
	g.mu.Lock()
	h := g.owners[e.Owner]
	if op == registry.OpSet {
		h.n++
		h.bytes += entryBytes(&e)
	} else {
		h.n--
		h.bytes -= entryBytes(&e)
	}
	if h.n <= 0 {
		delete(g.owners, e.Owner)
	} else {
		g.owners[e.Owner] = h
	}
	p := g.pruner
	g.mu.Unlock()
	if p != nil && op == registry.OpUnset {
		p.forget(e)
	}
}

// Owned returns the number of registrations held by owner.
func (g *Guard) Owned(owner string) int {
	n, _ := g.owned(owner)
	return n
}

// OwnedBytes returns the bytes charged to owner (see
// DefaultMaxRegBytesPerOwner).
func (g *Guard) OwnedBytes(owner string) int {
	_, b := g.owned(owner)
	return b
}

func (g *Guard) owned(owner string) (n, bytes int) {
	g.mu.Lock()
	h := g.owners[owner]
	g.mu.Unlock()
	return h.n, h.bytes
}

func isDatagram(c *access.Caller) bool {
	return c.Netid == pmap.NetidUDP || c.Netid == pmap.NetidUDP6
}

// ServeRPC implements server.Handler.
func (g *Guard) ServeRPC(out, req []byte, c *access.Caller) ([]byte, bool) {
	start := len(out)
	if isDatagram(c) && g.cfg.Limiter != nil && g.cfg.Limiter.RefuseUDP(c.Addr.Addr(), req) {
		g.Stat.Refused.Add(1)
		return rpc.AppendAuthError(out, xidOf(req), rpc.AuthTooWeak), true
	}
	if reply, done := g.policy(out, req, c); done {
		return reply, true
	}
	reply, send := g.next.ServeRPC(out, req, c)
	g.afterSet(req, c, send)
	if send && isDatagram(c) && g.cfg.Limiter != nil && len(reply)-start > len(req) &&
		!g.cfg.Limiter.Allow(c.Addr.Addr(), len(req), len(reply)-start, g.cfg.Now()) {
		g.Stat.Limited.Add(1)
		return out[:start], false
	}
	return reply, send
}

// ServeRPCTail implements server.TailHandler for streams (no UDP rules).
func (g *Guard) ServeRPCTail(out, req []byte, c *access.Caller) (reply, tail []byte, send bool) {
	if g.tail == nil || isDatagram(c) {
		reply, send = g.ServeRPC(out, req, c)
		return reply, nil, send
	}
	if reply, done := g.policy(out, req, c); done {
		return reply, nil, true
	}
	reply, tail, send = g.tail.ServeRPCTail(out, req, c)
	g.afterSet(req, c, send)
	return reply, tail, send
}

func xidOf(req []byte) uint32 {
	if len(req) < 4 {
		return 0
	}
	return uint32(req[0])<<24 | uint32(req[1])<<16 | uint32(req[2])<<8 | uint32(req[3])
}

// setArgs is a decoded SET of any version.
type setArgs struct {
	prog, vers uint32
	netid      string // v2: "udp"/"tcp" from the protocol ("" for another)
	rawNetid   []byte // v3/v4 netid (aliases req): converted only when needed
	addr       []byte // v3/v4 universal address (aliases req)
	strBytes   int    // len(netid) + len(addr) as the table stores them
	// served are the ports a client can derive from the entry as the table
	// will serve it (see servedPorts); n of them are set.
	served [2]uint16
	n      int
}

// parseSet decodes req when it is a SET of program 100000 (any version)
// with well-formed arguments; otherwise ok is false and the service decides.
func parseSet(req []byte) (h rpc.CallHeader, a setArgs, ok bool) {
	args, err := rpc.ParseCall(req, &h)
	if err != nil || h.Prog != pmap.Prog || h.Proc != uint32(pmap.PmapProcSet) || rpc.CheckCred(&h) != rpc.AuthOK {
		return h, a, false
	}
	var d xdr.Decoder
	d.Reset(args)
	switch h.Vers {
	case pmap.Vers2:
		var m pmap.Mapping
		if m.DecodeXDR(&d) != nil {
			return h, a, false
		}
		// The table stores "0.0.0.0.p1.p2" of the port's low 16 bits
		// (registry.Table.SetV2): 65536+111 is served as 111.
		a = setArgs{prog: m.Prog, vers: m.Vers, served: [2]uint16{uint16(m.Port)}, n: 1}
		switch m.Prot {
		case pmap.IPProtoUDP:
			a.netid = pmap.NetidUDP
		case pmap.IPProtoTCP:
			a.netid = pmap.NetidTCP
		}
		// "0.0.0.0.p1.p2" is at most 15 bytes.
		a.strBytes = len(a.netid) + len("0.0.0.0.255.255")
	case pmap.Vers3, pmap.Vers4:
		var r pmap.RPCB
		if r.DecodeXDR(&d) != nil {
			return h, a, false
		}
		a = setArgs{prog: r.Prog, vers: r.Vers, rawNetid: r.Netid, addr: r.Addr,
			strBytes: cLen(r.Netid) + cLen(r.Addr)}
		if servedInet(r.Netid) {
			if mult, or, ok := pmap.UaddrClientPorts(string(r.Addr)); ok {
				a.served, a.n = [2]uint16{mult, or}, 2
			}
		}
	default:
		return h, a, false
	}
	return h, a, true
}

// netidString is the SET's netid, "" when it has none. It allocates for
// v3/v4: only the rare paths (a SET over the budget, pruning) need it.
func (a *setArgs) netidString() string {
	if a.rawNetid != nil {
		return string(a.rawNetid)
	}
	return a.netid
}

// cLen is the length of b as the table stores it: up to its first NUL.
func cLen(b []byte) int {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return i
	}
	return len(b)
}

// servedInet reports whether the table serves an entry of netid as a TCP
// or UDP one: it keeps the netid up to its first NUL and looks it up
// case-insensitively (strcasecmp), so "TCP" and "tcp\x00junk" answer a
// GETADDR over tcp, and the latter is in the v2 view.
func servedInet(netid []byte) bool {
	if i := bytes.IndexByte(netid, 0); i >= 0 {
		netid = netid[:i]
	}
	for _, n := range [...]string{pmap.NetidUDP, pmap.NetidTCP, pmap.NetidUDP6, pmap.NetidTCP6} {
		if asciiEqualFold(netid, n) {
			return true
		}
	}
	return false
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// privilegedPort returns a port in 1..IPPORT_RESERVED-1, or the NFS port,
// that some client would derive from the entry, if there is one
// (CHECK_PORT compares the port as the table will serve it, DECISIONS
// "rate limits").
func (a *setArgs) privilegedPort() (uint16, bool) {
	for _, p := range a.served[:a.n] {
		if p > 0 && p < PrivPort || p == NFSPort {
			return p, true
		}
	}
	return 0, false
}

// policy answers FALSE, without dispatch, a SET the service would accept
// but the registration cap or CHECK_PORT refuses. done is false when the
// service must handle req.
func (g *Guard) policy(out, req []byte, c *access.Caller) (reply []byte, done bool) {
	if len(req) < 24 || req[23] != byte(pmap.PmapProcSet) || req[20]|req[21]|req[22] != 0 {
		return out, false // fast path: not a SET (proc is the 6th word)
	}
	if !access.MayChange(c, g.cfg.Insecure) ||
		!c.IsLocalSocket() && g.cfg.HostAllowed != nil && !g.cfg.HostAllowed(c) {
		return out, false // the service answers AUTH_TOOWEAK
	}
	h, a, ok := parseSet(req)
	if !ok {
		return out, false
	}
	var ob [32]byte // a SET within the budget costs no allocation
	owner := access.AppendOwner(ob[:0], c)
	if string(owner) == access.OwnerSuperuser {
		return out, false
	}
	if port, bad := a.privilegedPort(); g.cfg.CheckPort && bad {
		g.Stat.PortCheck.Add(1)
		g.logMu.Lock()
		b := g.beginRefusal(c, a.prog)
		b = append(b, "request from unprivileged port (registering port "...)
		b = strconv.AppendUint(b, uint64(port), 10)
		g.endRefusal(append(b, ')'))
		return refuse(out, h.XID), true
	}
	n, held := g.owned(string(owner))
	add := a.strBytes + len(owner) + RegEntryOverhead
	overCount, overBytes := n >= g.cfg.MaxPerOwner, held+add > g.cfg.MaxRegBytesPerOwner
	if overCount || overBytes {
		// A SET of an existing (prog, vers, netid) adds nothing: let the
		// service answer it (TRUE for the same address, FALSE otherwise).
		if netid := a.netidString(); netid != "" {
			// Find falls back to another version: compare it.
			if e, ok := g.cfg.Table.Find(a.prog, a.vers, netid); ok && e.Vers == a.vers {
				return out, false
			}
		}
		g.logMu.Lock()
		b := append(g.beginRefusal(c, a.prog), "owner "...)
		b = append(b, owner...)
		b = append(b, " holds "...)
		if overCount {
			g.Stat.OverCap.Add(1)
			b = strconv.AppendInt(b, int64(g.cfg.MaxPerOwner), 10)
			b = append(b, " registrations (the cap)"...)
		} else {
			g.Stat.OverBytes.Add(1)
			b = strconv.AppendInt(b, int64(held), 10)
			b = append(b, " bytes of registrations, "...)
			b = strconv.AppendInt(b, int64(add), 10)
			b = append(b, " more would pass the budget of "...)
			b = strconv.AppendInt(b, int64(g.cfg.MaxRegBytesPerOwner), 10)
		}
		g.endRefusal(b)
		return refuse(out, h.XID), true
	}
	return out, false
}

// refuse is the reply of a refused SET: accepted, SUCCESS, FALSE.
func refuse(out []byte, xid uint32) []byte {
	return xdr.AppendBool(rpc.AppendAccepted(out, xid, rpc.Success), false)
}

// beginRefusal starts a refusal line in logBuf: "connect from <who> to
// set(<prog>): ". Called with logMu held; endRefusal logs and unlocks.
func (g *Guard) beginRefusal(c *access.Caller, prog uint32) []byte {
	b := append(g.logBuf[:0], "connect from "...)
	if c.IsLocalSocket() {
		b = strconv.AppendInt(append(b, "local uid "...), int64(c.UID), 10)
	} else {
		b = c.Addr.Addr().AppendTo(b)
	}
	b = append(b, " to set("...)
	b = strconv.AppendUint(b, uint64(prog), 10)
	return append(b, "): "...)
}

func (g *Guard) endRefusal(b []byte) {
	g.cfg.Log(b)
	g.logBuf = b[:0]
	g.logMu.Unlock()
}

// afterSet tells the pruner about a SET over the local socket that left
// the caller's entry in the table.
func (g *Guard) afterSet(req []byte, c *access.Caller, send bool) {
	if !send || c.PID <= 0 || !c.IsLocalSocket() {
		return
	}
	g.mu.Lock()
	p := g.pruner
	g.mu.Unlock()
	if p == nil || len(req) < 24 || req[23] != byte(pmap.PmapProcSet) || req[20]|req[21]|req[22] != 0 {
		return
	}
	_, a, ok := parseSet(req)
	netid := a.netidString()
	if !ok || netid == "" {
		return
	}
	e, ok := g.cfg.Table.Find(a.prog, a.vers, netid)
	if !ok || e.Vers != a.vers || e.Owner != access.Owner(c) {
		return
	}
	p.track(e, c.PID)
}

// localAddr reports whether a is an address of this host for pruning:
// unspecified, loopback, or one of the interfaces' (local).
func localAddr(a netip.Addr, local func(netip.Addr) bool) bool {
	a = a.Unmap()
	return a.IsUnspecified() || a.IsLoopback() || local != nil && local(a)
}

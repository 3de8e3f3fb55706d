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

// PrivPort is IPPORT_RESERVED: CHECK_PORT protects the ports below it.
const PrivPort = 1024

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
	// CheckPort: a SET that would let any client derive a port in 1..1023
	// from the entry as served (v2: the port's low 16 bits; a uaddr: every
	// reader's arithmetic, see pmap.UaddrClientPorts) needs a superuser
	// caller; others get FALSE.
	CheckPort bool
	// Log receives refusals (the daemon's logger is rate-limited); nil
	// discards them.
	Log func(msg string)
	// Now is the clock of the rate limiter; nil is time.Now.
	Now func() time.Time
}

// Stats counts what the guard did.
type Stats struct {
	Refused   atomic.Uint64 // UDP list calls answered AUTH_TOOWEAK (RefuseLists)
	Limited   atomic.Uint64 // amplifying UDP replies dropped
	OverCap   atomic.Uint64 // SETs refused: owner at MaxPerOwner
	PortCheck atomic.Uint64 // SETs refused: CHECK_PORT
}

// Guard is a Handler decorator. It is safe for concurrent use.
type Guard struct {
	next Handler
	tail tailHandler
	cfg  Config
	Stat Stats

	mu     sync.Mutex
	owners map[string]int // registrations per owner, from Observe
	pruner *Pruner        // nil unless pruning is on
}

// New returns a Guard in front of next. It counts the table's current
// entries per owner; install Observe in the table's observer chain so the
// counts follow every change.
func New(next Handler, cfg Config) *Guard {
	if cfg.MaxPerOwner <= 0 {
		cfg.MaxPerOwner = DefaultMaxPerOwner
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = func(string) {}
	}
	g := &Guard{next: next, cfg: cfg, owners: map[string]int{}}
	g.tail, _ = next.(tailHandler)
	for _, e := range cfg.Table.Entries() {
		g.owners[e.Owner]++
	}
	return g
}

// Observe keeps the per-owner counts (and the pruner's records) in step
// with the table; call it from the table's observer, under its lock.
func (g *Guard) Observe(op registry.Op, e registry.Entry) {
	g.mu.Lock()
	if op == registry.OpSet {
		g.owners[e.Owner]++
	} else if g.owners[e.Owner]--; g.owners[e.Owner] <= 0 {
		delete(g.owners, e.Owner)
	}
	p := g.pruner
	g.mu.Unlock()
	if p != nil && op == registry.OpUnset {
		p.forget(e)
	}
}

// Owned returns the number of registrations held by owner.
func (g *Guard) Owned(owner string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.owners[owner]
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
	addr       []byte // v3/v4 universal address (aliases req)
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
	case pmap.Vers3, pmap.Vers4:
		var r pmap.RPCB
		if r.DecodeXDR(&d) != nil {
			return h, a, false
		}
		a = setArgs{prog: r.Prog, vers: r.Vers, netid: string(r.Netid), addr: r.Addr}
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

// privilegedPort returns a port in 1..IPPORT_RESERVED-1 that some client
// would derive from the entry, if there is one (CHECK_PORT compares the
// port as the table will serve it, DECISIONS "rate limits").
func (a *setArgs) privilegedPort() (uint16, bool) {
	for _, p := range a.served[:a.n] {
		if p > 0 && p < PrivPort {
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
	owner := access.Owner(c)
	if owner == access.OwnerSuperuser {
		return out, false
	}
	if port, bad := a.privilegedPort(); g.cfg.CheckPort && bad {
		g.Stat.PortCheck.Add(1)
		g.cfg.Log("connect from " + from(c) + " to set(" + strconv.FormatUint(uint64(a.prog), 10) +
			"): request from unprivileged port (registering port " + strconv.FormatUint(uint64(port), 10) + ")")
		return refuse(out, h.XID), true
	}
	if g.Owned(owner) >= g.cfg.MaxPerOwner {
		// A SET of an existing (prog, vers, netid) adds nothing: let the
		// service answer it (TRUE for the same address, FALSE otherwise).
		if a.netid != "" {
			// Find falls back to another version: compare it.
			if e, ok := g.cfg.Table.Find(a.prog, a.vers, a.netid); ok && e.Vers == a.vers {
				return out, false
			}
		}
		g.Stat.OverCap.Add(1)
		g.cfg.Log("connect from " + from(c) + " to set(" + strconv.FormatUint(uint64(a.prog), 10) +
			"): owner " + owner + " holds " + strconv.Itoa(g.cfg.MaxPerOwner) + " registrations (the cap)")
		return refuse(out, h.XID), true
	}
	return out, false
}

// refuse is the reply of a refused SET: accepted, SUCCESS, FALSE.
func refuse(out []byte, xid uint32) []byte {
	return xdr.AppendBool(rpc.AppendAccepted(out, xid, rpc.Success), false)
}

func from(c *access.Caller) string {
	if c.IsLocalSocket() {
		return "local uid " + strconv.Itoa(c.UID)
	}
	return c.Addr.Addr().String()
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
	if !ok || a.netid == "" {
		return
	}
	e, ok := g.cfg.Table.Find(a.prog, a.vers, a.netid)
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

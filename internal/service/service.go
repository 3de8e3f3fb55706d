package service

import (
	"errors"
	"net/netip"
	"time"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/forward"
	"github.com/openrpcbind/rpcbind/internal/ifaddr"
	"github.com/openrpcbind/rpcbind/internal/registry"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
	"github.com/openrpcbind/rpcbind/xdr"
)

// MaxUDPReply is the largest reply the reference can send over UDP: its
// datagram transports are created with RPC_MAXDATASIZE (9000) buffers, and a
// reply that does not fit fails to encode (spec §1.1, §7).
const MaxUDPReply = xdr.MaxDataSize

// EventKind says why the service logs.
type EventKind int

const (
	// EventAccess: a request passed check_access (logged by the reference
	// only with -l). NULL is reported too.
	EventAccess EventKind = iota + 1
	// EventNonLocal: SET or UNSET from a caller that is not local
	// ("declined (non-loopback sender)"), answered AUTH_TOOWEAK.
	EventNonLocal
	// EventHostDenied: the HostAllowed hook (hosts.allow/deny) refused the
	// caller ("request from unauthorized host"), answered AUTH_TOOWEAK.
	EventHostDenied
	// EventCallitDenied: CALLIT/BCAST/INDIRECT to a forbidden program or
	// procedure ("indirect call not allowed"), answered AUTH_TOOWEAK.
	EventCallitDenied
)

// Event is what the Log hook receives. Prog is the program the request is
// about (the r_prog / pm_prog / target program), 0 when there is none.
type Event struct {
	Kind             EventKind
	Caller           *access.Caller
	Vers, Proc, Prog uint32
}

// Config wires a Service.
type Config struct {
	Table    *registry.Table
	Insecure bool // -i: anyone may SET/UNSET and CALLIT may target 100000

	// Forwarder serves CALLIT, BCAST and INDIRECT (-r). nil: CALLIT and BCAST
	// are silent and INDIRECT answers SYSTEM_ERR, as the reference without -r.
	Forwarder *forward.Forwarder

	// Ifaces is the interface list for the address merge of GETADDR,
	// GETVERSADDR, GETADDRLIST and CALLIT; nil is an empty list.
	Ifaces *ifaddr.Cache

	// HostAllowed is the hosts.allow/deny check (libwrap in the reference),
	// consulted after argument decoding for every procedure but NULL and the
	// remote-call ones, and never for the local socket. nil allows everyone.
	HostAllowed func(c *access.Caller) bool

	// Log receives access and denial events; nil discards them. It is called
	// inline and should not block. The event is passed by value: a pointer
	// through a func value escapes, and would cost every request an
	// allocation (issue 13).
	Log func(e Event)

	// Now is the clock of GETTIME (and the forwarder's); nil is time.Now.
	Now func() time.Time
}

// Service answers program 100000. It is safe for concurrent use.
type Service struct {
	cfg   Config
	stats stats
}

// New returns a Service for cfg. cfg.Table must not be nil.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{cfg: cfg}
	s.stats.init()
	return s
}

// ServeRPC handles one call message. It appends the reply to out and
// reports whether to send it; with send false nothing is appended. req is not
// retained.
func (s *Service) ServeRPC(out, req []byte, c *access.Caller) (reply []byte, send bool) {
	reply, tail, send := s.serve(out, req, c)
	return append(reply, tail...), send
}

// ServeRPCTail is ServeRPC for a stream transport that writes the reply
// with writev: the reply is reply followed by tail, where tail, when not
// empty, is a shared immutable buffer (the table's cached DUMP encoding,
// hundreds of KB with many registrations) that must not be modified.
func (s *Service) ServeRPCTail(out, req []byte, c *access.Caller) (reply, tail []byte, send bool) {
	return s.serve(out, req, c)
}

func (s *Service) serve(out, req []byte, c *access.Caller) (reply, tail []byte, send bool) {
	var h rpc.CallHeader
	args, err := rpc.ParseCall(req, &h)
	if err != nil {
		switch {
		case errors.Is(err, rpc.ErrRPCVersion):
			// Improvement (RFC 5531 §9): the reference drops these.
			return rpc.AppendRPCMismatch(out, h.XID, rpc.RPCVersion, rpc.RPCVersion), nil, true
		case errors.Is(err, rpc.ErrBadCred):
			return rpc.AppendAuthError(out, h.XID, rpc.AuthBadCred), nil, true
		}
		// Undecodable header (or an oversized verifier, which libtirpc's
		// xdr_callmsg refuses too): silence; any answer could amplify.
		return out, nil, false
	}
	if st := rpc.CheckCred(&h); st != rpc.AuthOK {
		return rpc.AppendAuthError(out, h.XID, st), nil, true
	}
	if h.Prog != pmap.Prog {
		return rpc.AppendAccepted(out, h.XID, rpc.ProgUnavail), nil, true
	}
	high, ok := pmap.HighProc(h.Vers)
	if !ok {
		return rpc.AppendProgMismatch(out, h.XID, pmap.MinVers, pmap.MaxVers), nil, true
	}
	if h.Proc > uint32(high) {
		return rpc.AppendAccepted(out, h.XID, rpc.ProcUnavail), nil, true
	}
	vi := int(h.Vers - pmap.Vers2)
	s.stats.procInfo(vi, h.Proc)

	r := request{s: s, h: h, args: args, c: c, out: out, vi: vi}
	if h.Vers == pmap.Vers2 {
		r.serveV2()
	} else {
		r.serveV34()
	}
	if !r.send {
		return out, nil, false
	}
	if isDatagram(c) && len(r.out)+len(r.tail)-len(out) > MaxUDPReply {
		// The reference's svc_sendreply fails; v3/v4 then answer SYSTEM_ERR,
		// v2 ignores the failure and sends nothing.
		if h.Vers == pmap.Vers2 {
			return out, nil, false
		}
		return rpc.AppendAccepted(out, h.XID, rpc.SystemErr), nil, true
	}
	return r.out, r.tail, true
}

// Stats returns the GETSTAT counters as the wire would carry them. It
// decodes an encoding: a slow path, for tests and diagnostics.
func (s *Service) Stats() [pmap.NumStatVers]pmap.Stat {
	st, err := pmap.DecodeStatByVers(s.stats.appendXDR(nil))
	if err != nil {
		panic("service: GETSTAT encoding does not decode: " + err.Error())
	}
	return st
}

func isDatagram(c *access.Caller) bool {
	return c.Netid == pmap.NetidUDP || c.Netid == pmap.NetidUDP6
}

// request carries one call through dispatch.
type request struct {
	s    *Service
	h    rpc.CallHeader // a copy: a pointer would move the caller's to the heap
	args []byte
	c    *access.Caller
	out  []byte
	vi   int // statistics index: vers - 2
	send bool
	tail []byte // the reply's shared, immutable end (a cached DUMP), not copied
}

// appendShared ends the reply with a shared immutable encoding: it is
// copied only by ServeRPC (after the UDP size check) and never by
// ServeRPCTail.
func (r *request) appendShared(b []byte) { r.tail = b }

func (r *request) accept(stat rpc.AcceptStat) {
	r.out = rpc.AppendAccepted(r.out, r.h.XID, stat)
	r.send = true
}

// success starts a SUCCESS reply; the results follow.
func (r *request) success() { r.accept(rpc.Success) }

func (r *request) garbage() { r.accept(rpc.GarbageArgs) }

func (r *request) tooWeak() {
	r.out = rpc.AppendAuthError(r.out, r.h.XID, rpc.AuthTooWeak)
	r.send = true
}

func (r *request) log(kind EventKind, prog uint32) {
	if f := r.s.cfg.Log; f != nil {
		f(Event{Kind: kind, Caller: r.c, Vers: r.h.Vers, Proc: r.h.Proc, Prog: prog})
	}
}

// checkAccess is the reference's check_access after argument decoding:
// SET and UNSET need a local caller (unless -i), then everyone but the local
// socket goes through the hosts check. On false the reply is AUTH_TOOWEAK.
func (r *request) checkAccess(change bool, prog uint32) bool {
	if change && !access.MayChange(r.c, r.s.cfg.Insecure) {
		r.log(EventNonLocal, prog)
		return false
	}
	if f := r.s.cfg.HostAllowed; f != nil && !r.c.IsLocalSocket() && !f(r.c) {
		r.log(EventHostDenied, prog)
		return false
	}
	r.log(EventAccess, prog)
	return true
}

// mergeInto appends the XDR string of the merged address of regAddr for the
// caller (spec §1.6) and reports whether the merge succeeded; on failure
// nothing is appended.
func (r *request) appendMerged(b []byte, netid string, regAddr string, hint []byte) ([]byte, bool) {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b, ok := r.s.cfg.Ifaces.AppendMerge(b, r.c.Addr, hint, regAddr, netid)
	if !ok {
		return b[:start], false
	}
	n := len(b) - start - 4
	xdr.PutUint32(b[start:], uint32(n))
	return append(b, zeroPad[:xdr.Padding(n)]...), true
}

var zeroPad [4]byte

// ownerBuf holds an owner string on the stack: "superuser", "unknown" or
// a decimal uid. A conversion of at most 32 bytes to a string that does
// not escape does not allocate.
const ownerBuf = 32

// internNetid returns the netid a SET registers, as a constant when it is
// one of the transports' (most registrations), so the entry does not
// carry a copy.
func internNetid(b []byte) string {
	for _, n := range [...]string{pmap.NetidUDP, pmap.NetidTCP, pmap.NetidUDP6, pmap.NetidTCP6, pmap.NetidLocal} {
		if string(b) == n {
			return n
		}
	}
	return string(b)
}

// loopback returns the reference's local_sa for the caller's family: the
// address rpcbind forwards remote calls from (127.0.0.1:111 or [::1]:111).
func loopback(netid string) netip.AddrPort {
	if netid == pmap.NetidUDP6 {
		return netip.AddrPortFrom(netip.IPv6Loopback(), pmap.Port)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), pmap.Port)
}

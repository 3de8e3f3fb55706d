package access

import (
	"net/netip"
	"strconv"
)

// Owner strings recorded with a registration (spec §3.2).
const (
	OwnerSuperuser = "superuser" // uid 0 on the local socket, or a privileged loopback port
	OwnerUnknown   = "unknown"   // anything else without SO_PEERCRED
)

// ReservedPort is IPPORT_RESERVED: source ports below it can only be bound
// by root, which is what is_localroot trusts (Linux uses the same limit for
// IPv6, IPV6PORT_RESERVED = IPPORT_RESERVED).
const ReservedPort = 1024

// Caller describes where a request came from.
type Caller struct {
	Netid string         // netid of the arrival transport: "udp", "tcp", "udp6", "tcp6", "local"
	Addr  netip.AddrPort // source address; invalid on the local socket
	Dst   netip.AddrPort // address the request arrived on (UDP pktinfo / TCP local address)
	UID   int            // SO_PEERCRED uid on the local socket, -1 otherwise
	PID   int            // SO_PEERCRED pid on the local socket, 0 otherwise (pruning of dead registrations)
}

// IsLocalSocket reports whether the request came over the AF_UNIX socket.
// The reference creates only "local"; "unix" (same family in /etc/netconfig)
// is accepted too.
func (c *Caller) IsLocalSocket() bool { return c.Netid == "local" || c.Netid == "unix" }

var (
	loop4    = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	loop6    = netip.IPv6Loopback()
	loop4in6 = netip.AddrFrom16(loop4.As16())
)

// isExactLoopback is the address test of the reference's is_loopback and
// is_localroot: INADDR_LOOPBACK (127.0.0.1) exactly, ::1, or the v4-mapped
// ::ffff:127.0.0.1. The rest of 127/8 (127.0.0.2, ...) does not count.
func isExactLoopback(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.WithZone("")
	return a == loop4 || a == loop6 || a == loop4in6
}

// Owner returns the owner string the reference records for a SET from c and
// uses to authorise an UNSET (spec §3.2, getowner and pmapproc_change):
//   - local socket with SO_PEERCRED uid 0: "superuser";
//   - local socket with uid N: N in decimal;
//   - no peer credentials, source exactly 127.0.0.1, ::1 or ::ffff:127.0.0.1
//     with a source port below 1024: "superuser";
//   - anything else (other 127/8 addresses, unprivileged ports, remote
//     callers allowed by -i, a local socket without credentials): "unknown".
//
// Decision: "loopback" here is is_localroot's exact-address test, the same
// set of addresses MayChange accepts, not all of 127/8. In the reference a
// caller from 127.0.0.2 cannot SET at all, so the difference is only visible
// with -i, where is_localroot still insists on 127.0.0.1.
func Owner(c *Caller) string {
	if c.IsLocalSocket() && c.UID >= 0 {
		if c.UID == 0 {
			return OwnerSuperuser
		}
		return strconv.Itoa(c.UID)
	}
	// __rpc_get_local_uid failed (not AF_UNIX, or no credentials):
	// is_localroot, which is false for AF_LOCAL.
	if !c.IsLocalSocket() && isExactLoopback(c.Addr.Addr()) && c.Addr.Port() < ReservedPort {
		return OwnerSuperuser
	}
	return OwnerUnknown
}

// AppendOwner appends Owner(c) to b. It does not allocate when b has room:
// an UNSET or a budget lookup needs the owner only for a comparison.
func AppendOwner(b []byte, c *Caller) []byte {
	if c.IsLocalSocket() && c.UID > 0 {
		return strconv.AppendInt(b, int64(c.UID), 10)
	}
	return append(b, Owner(c)...)
}

// MayChange reports whether c may SET or UNSET (check_access): the local
// socket, a source address of exactly 127.0.0.1, ::1 or ::ffff:127.0.0.1
// (any port), or anyone when the daemon runs with -i (insecure).
// Denial is answered with AUTH_TOOWEAK by the service.
func MayChange(c *Caller, insecure bool) bool {
	return insecure || c.IsLocalSocket() || isExactLoopback(c.Addr.Addr())
}

// IsLoopback reports whether a is a loopback address in the wide sense used
// for rate limits and caps (DECISIONS "non-local" source): 127/8, ::1, or
// ::ffff:127/8. Note that this is wider than what MayChange accepts.
func IsLoopback(a netip.Addr) bool {
	return a.IsValid() && a.Unmap().IsLoopback()
}

// IsNonLocal reports whether c is subject to per-source limits: neither the
// local socket nor a loopback source (DECISIONS "non-local" source).
func (c *Caller) IsNonLocal() bool {
	return !c.IsLocalSocket() && !IsLoopback(c.Addr.Addr())
}

// Program numbers and procedures of the reference's check_callit deny list
// (rpcsvc/*.h).
const (
	progRPCB     = 100000 // RPCBPROG: denied unless -i
	progNFS      = 100003 // NFS_PROGRAM: all procs
	progYP       = 100004 // YPPROG: MATCH, FIRST, NEXT, ALL
	progMount    = 100005 // MOUNTPROG: MNT, UMNT
	progYPBind   = 100007 // YPBINDPROG: SETDOM
	progYPPasswd = 100009 // YPPASSWDPROG: all procs
	progRQuota   = 100011 // RQUOTAPROG: all procs

	procMountMNT     = 1 // MOUNTPROC_MNT
	procMountUMNT    = 3 // MOUNTPROC_UMNT
	procYPBindSetDom = 2 // YPBINDPROC_SETDOM
	procYPMatch      = 3 // YPPROC_MATCH
	procYPFirst      = 4 // YPPROC_FIRST
	procYPNext       = 5 // YPPROC_NEXT
	procYPAll        = 8 // YPPROC_ALL
)

// CallitAllowed reports whether CALLIT/BCAST/INDIRECT may forward to
// (prog, proc) — the reference's check_callit (spec §1.7). Procedure 0 is
// always allowed. A denial is answered with AUTH_TOOWEAK even by the
// otherwise silent CALLIT.
func CallitAllowed(prog, proc uint32, insecure bool) bool {
	if proc == 0 {
		return true
	}
	switch prog {
	case progRPCB:
		return insecure
	case progMount:
		return proc != procMountMNT && proc != procMountUMNT
	case progYPBind:
		return proc != procYPBindSetDom
	case progYPPasswd, progNFS, progRQuota:
		return false
	case progYP:
		switch proc {
		case procYPAll, procYPMatch, procYPFirst, procYPNext:
			return false
		}
	}
	return true
}

package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
)

// clntStat is libtirpc's enum clnt_stat: the numbers index its message
// table, so they are those of <rpc/clnt_stat.h>.
type clntStat int

const (
	rpcSuccess          clntStat = 0  // RPC_SUCCESS
	rpcCantEncodeArgs   clntStat = 1  // RPC_CANTENCODEARGS
	rpcCantDecodeRes    clntStat = 2  // RPC_CANTDECODERES
	rpcCantSend         clntStat = 3  // RPC_CANTSEND
	rpcCantRecv         clntStat = 4  // RPC_CANTRECV
	rpcTimedOut         clntStat = 5  // RPC_TIMEDOUT
	rpcVersMismatch     clntStat = 6  // RPC_VERSMISMATCH
	rpcAuthError        clntStat = 7  // RPC_AUTHERROR
	rpcProgUnavail      clntStat = 8  // RPC_PROGUNAVAIL
	rpcProgVersMismatch clntStat = 9  // RPC_PROGVERSMISMATCH
	rpcProcUnavail      clntStat = 10 // RPC_PROCUNAVAIL
	rpcCantDecodeArgs   clntStat = 11 // RPC_CANTDECODEARGS
	rpcSystemError      clntStat = 12 // RPC_SYSTEMERROR
	rpcUnknownHost      clntStat = 13 // RPC_UNKNOWNHOST
	rpcPmapFailure      clntStat = 14 // RPC_PMAPFAILURE
	rpcProgNotRegist    clntStat = 15 // RPC_PROGNOTREGISTERED
	rpcFailed           clntStat = 16 // RPC_FAILED
	rpcUnknownProto     clntStat = 17 // RPC_UNKNOWNPROTO
	rpcRPCBFailure      clntStat = 14 // RPC_RPCBFAILURE is RPC_PMAPFAILURE
	rpcN2AXlateFailure  clntStat = 22 // RPC_N2AXLATEFAILURE (no message)
)

var statMessages = [...]string{
	"RPC: Success",
	"RPC: Can't encode arguments",
	"RPC: Can't decode result",
	"RPC: Unable to send",
	"RPC: Unable to receive",
	"RPC: Timed out",
	"RPC: Incompatible versions of RPC",
	"RPC: Authentication error",
	"RPC: Program unavailable",
	"RPC: Program/version mismatch",
	"RPC: Procedure unavailable",
	"RPC: Server can't decode arguments",
	"RPC: Remote system error",
	"RPC: Unknown host",
	"RPC: Port mapper failure",
	"RPC: Program not registered",
	"RPC: Failed (unspecified error)",
	"RPC: Unknown protocol",
}

// sperrno is clnt_sperrno.
func sperrno(s clntStat) string {
	if s >= 0 && int(s) < len(statMessages) {
		return statMessages[s]
	}
	return "RPC: (unknown error code)"
}

var authMessages = [...]string{
	"Authentication OK",
	"Invalid client credential",
	"Server rejected credential",
	"Invalid client verifier",
	"Server rejected verifier",
	"Client credential too weak",
	"Invalid server verifier",
	"Failed (unspecified error)",
}

// rpcErr is libtirpc's struct rpc_err: a status and its detail.
type rpcErr struct {
	Stat      clntStat
	Errno     syscall.Errno // CANTSEND, CANTRECV, SYSTEMERROR
	Low, High uint32        // VERSMISMATCH, PROGVERSMISMATCH
	Why       rpc.AuthStat  // AUTHERROR
	Detail    string        // what went wrong, for hostile replies (not printed by libtirpc)
}

// strerror is glibc's strerror for the errnos a client meets: Go's table
// holds the same texts, lower-cased.
func strerror(e syscall.Errno) string {
	s := e.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// sperror is clnt_sperror(clnt, prefix).
func (e *rpcErr) sperror(prefix string) string {
	s := prefix + ": " + sperrno(e.Stat)
	switch e.Stat {
	case rpcCantSend, rpcCantRecv:
		s += "; errno = " + strerror(e.Errno)
	case rpcVersMismatch, rpcProgVersMismatch:
		s += "; low version = " + u32(e.Low) + ", high version = " + u32(e.High)
	case rpcAuthError:
		s += "; why = "
		if int(e.Why) < len(authMessages) {
			s += authMessages[e.Why]
		} else {
			s += "(unknown authentication error - " + strconv.Itoa(int(int32(e.Why))) + ")"
		}
	case rpcSuccess, rpcCantEncodeArgs, rpcCantDecodeRes, rpcTimedOut, rpcProgUnavail,
		rpcProcUnavail, rpcCantDecodeArgs, rpcSystemError, rpcUnknownHost, rpcUnknownProto,
		rpcPmapFailure, rpcProgNotRegist, rpcFailed:
	default:
		s += "; s1 = " + u32(e.Low) + ", s2 = " + u32(e.High)
	}
	return s
}

// createErr is rpc_createerr: the status of a failed client creation and,
// for PMAPFAILURE, the error of the call behind it.
type createErr struct {
	Stat  clntStat
	Errno syscall.Errno // SYSTEMERROR
	Call  rpcErr        // PMAPFAILURE
}

// spcreateerror is clnt_spcreateerror(prefix).
func (c *createErr) spcreateerror(prefix string) string {
	s := prefix + ": " + sperrno(c.Stat)
	switch c.Stat {
	case rpcPmapFailure:
		s += " - " + sperrno(c.Call.Stat)[5:]
		if c.Call.Stat == rpcCantSend || c.Call.Stat == rpcCantRecv {
			s += ": errno " + strconv.Itoa(int(c.Call.Errno)) + " (" + strerror(c.Call.Errno) + ")"
		}
	case rpcSystemError:
		s += " - " + strerror(c.Errno)
	}
	return s
}

func u32(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// errnoOf digs the system error out of a Go network error.
func errnoOf(err error, def syscall.Errno) syscall.Errno {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	return def
}

// netconfig is a row of Debian's /etc/netconfig (libtirpc), in file order.
type netconfig struct {
	Netid     string
	Semantics uint32 // pmap.NCTPI*
	Visible   bool   // the "v" flag: listed by NETPATH-less lookups
	Family    pmap.Family
	Proto     string // "udp", "tcp", "-"
}

var netconfigs = []netconfig{
	{"udp", pmap.NCTPIClts, true, pmap.FamilyInet, "udp"},
	{"tcp", pmap.NCTPICotsOrd, true, pmap.FamilyInet, "tcp"},
	{"udp6", pmap.NCTPIClts, true, pmap.FamilyInet6, "udp"},
	{"tcp6", pmap.NCTPICotsOrd, true, pmap.FamilyInet6, "tcp"},
	{"rawip", pmap.NCTPIRaw, false, pmap.FamilyInet, "-"},
	{"local", pmap.NCTPICotsOrd, false, pmap.FamilyLocal, "-"},
	{"unix", pmap.NCTPICotsOrd, false, pmap.FamilyLocal, "-"},
}

// unixWarning is what libtirpc's getnetconfigent prints for the netid
// "unix" (a FreeBSD leftover); the C library then sleeps ten seconds,
// which we do not.
const unixWarning = "The local transport is called \"unix\" in /etc/netconfig.\n" +
	"Please change this to \"local\" manually or run mergemaster(8).\n" +
	"See UPDATING entry 20021216 for details.\n" +
	"Continuing in 10 seconds\n\n" +
	"This warning will be removed 20030301\n"

// getnetconfigent looks netid up, exactly (case-sensitive).
func (a *app) getnetconfigent(netid string) (*netconfig, bool) {
	for i := range netconfigs {
		if netconfigs[i].Netid == netid {
			if netid == "unix" {
				a.stderr.WriteString(unixWarning)
			}
			return &netconfigs[i], true
		}
	}
	return nil, false
}

func (nc *netconfig) network() string {
	switch {
	case nc.Family == pmap.FamilyLocal:
		return "unix"
	case nc.Proto == "tcp" && nc.Family == pmap.FamilyInet:
		return "tcp4"
	case nc.Proto == "tcp":
		return "tcp6"
	case nc.Family == pmap.FamilyInet:
		return "udp4"
	}
	return "udp6"
}

func (nc *netconfig) stream() bool { return nc.Semantics != pmap.NCTPIClts }

// client is a CLIENT handle: a connection, the program and version it
// calls, and the error of its last call.
type client struct {
	c       *rpc.Client
	nc      *netconfig
	addr    string // what it is connected to: "host:port" or a path
	prog    uint32
	vers    uint32
	err     rpcErr
	timeout time.Duration
}

// tliCreate is clnt_tli_create(RPC_ANYFD, nc, addr, prog, vers): a socket
// of nc's family, connected for streams. addr is "host:port" or a path.
func (a *app) tliCreate(nc *netconfig, addr netip.AddrPort, path string, prog, vers uint32) (*client, *createErr) {
	if nc.Semantics == pmap.NCTPIRaw {
		return nil, &createErr{Stat: rpcUnknownProto}
	}
	target := path
	if nc.Family != pmap.FamilyLocal {
		if addr.Addr().Unmap().Is4() != (nc.Family == pmap.FamilyInet) {
			// A socket of one family cannot reach an address of the other.
			return nil, &createErr{Stat: rpcSystemError, Errno: syscall.EAFNOSUPPORT}
		}
		target = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port()).String()
		if nc.Family == pmap.FamilyInet6 {
			target = addr.String()
		}
	}
	opt := rpc.ClientOptions{
		Timeout:    a.cfg.ConnectTimeout,
		Retransmit: a.cfg.Retransmit,
		MaxReply:   maxReply,
	}
	c, err := rpc.Dial(nc.network(), target, opt)
	if err != nil {
		return nil, &createErr{Stat: rpcSystemError, Errno: errnoOf(err, syscall.ECONNREFUSED)}
	}
	return &client{c: c, nc: nc, addr: target, prog: prog, vers: vers}, nil
}

// maxReply caps one reply record (streams) we accept: far above what any
// real rpcbind sends (the reference splits a DUMP of its whole table into
// 8996-byte fragments), yet bounded, so a hostile server cannot make us
// buffer without limit.
const maxReply = 1 << 20

// localClient is rpcinfo's local_rpcb: an AF_LOCAL stream to rpcbind's
// socket.
func (a *app) localClient(prog, vers uint32) (*client, *createErr) {
	return a.tliCreate(&netconfigs[5], netip.AddrPort{}, a.cfg.Socket, prog, vers)
}

func (c *client) close() {
	if c != nil && c.c != nil {
		c.c.Close()
	}
}

// call makes one call and records its outcome in c.err, as CLNT_CALL; it
// returns the results of a SUCCESS reply.
func (c *client) call(timeout time.Duration, proc uint32, args []byte) ([]byte, clntStat) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := c.c.Call(ctx, c.prog, c.vers, proc, nil, args)
	c.err = toRPCErr(err)
	return res, c.err.Stat
}

// toRPCErr maps a Call error onto libtirpc's rpc_err.
func toRPCErr(err error) rpcErr {
	if err == nil {
		return rpcErr{}
	}
	var re *rpc.ReplyError
	if errors.As(err, &re) {
		if re.Stat == rpc.MsgDenied {
			if re.RejectStat == rpc.AuthError {
				return rpcErr{Stat: rpcAuthError, Why: re.AuthStat}
			}
			return rpcErr{Stat: rpcVersMismatch, Low: re.Low, High: re.High}
		}
		switch re.AcceptStat {
		case rpc.ProgUnavail:
			return rpcErr{Stat: rpcProgUnavail}
		case rpc.ProgMismatch:
			return rpcErr{Stat: rpcProgVersMismatch, Low: re.Low, High: re.High}
		case rpc.ProcUnavail:
			return rpcErr{Stat: rpcProcUnavail}
		case rpc.GarbageArgs:
			return rpcErr{Stat: rpcCantDecodeArgs}
		}
		return rpcErr{Stat: rpcSystemError}
	}
	if errors.Is(err, rpc.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return rpcErr{Stat: rpcTimedOut}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		// read_vc: the server closed the connection.
		return rpcErr{Stat: rpcCantRecv, Errno: syscall.ECONNRESET}
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		if oe.Op == "write" {
			return rpcErr{Stat: rpcCantSend, Errno: errnoOf(err, syscall.EPIPE)}
		}
		return rpcErr{Stat: rpcCantRecv, Errno: errnoOf(err, syscall.EIO)}
	}
	// A reply that does not parse (truncated header, unknown reply_stat,
	// a record over maxReply): libtirpc's xdr_replymsg fails.
	return rpcErr{Stat: rpcCantDecodeRes, Detail: err.Error()}
}

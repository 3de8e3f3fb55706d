package service

import (
	"errors"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/forward"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
	"github.com/openrpcbind/rpcbind/xdr"
)

// uaddrBuf holds a merged universal address on the stack (the longest,
// an IPv6 one with its port, is 51 bytes).
const uaddrBuf = 64

// callit is rpcbproc_callit_com for v2 CALLIT, v3 CALLIT, v4 BCAST and v4
// INDIRECT (spec §1.7). Only INDIRECT reports errors; the others stay silent
// except for a forbidden target, which gets AUTH_TOOWEAK from all four.
func (r *request) callit() {
	indirect := r.h.Vers == pmap.Vers4 && pmap.Proc(r.h.Proc) == pmap.RPCBProcIndirect
	fail := func(stat rpc.AcceptStat) {
		if indirect {
			r.accept(stat)
		}
	}
	if !isDatagram(r.c) {
		return // only SOCK_DGRAM transports, even for INDIRECT
	}
	var a pmap.CallArgs
	var d xdr.Decoder
	d.Reset(r.args)
	if a.DecodeXDR(&d) != nil {
		fail(rpc.GarbageArgs)
		return
	}
	if !access.CallitAllowed(a.Prog, a.Proc, r.s.cfg.Insecure) {
		r.log(EventCallitDenied, a.Prog)
		r.tooWeak()
		return
	}
	netid := r.c.Netid
	t := r.s.cfg.Table
	e, found := t.Find(a.Prog, a.Vers, netid)
	r.s.stats.rmtCall(r.vi, indirect, a.Prog, a.Vers, a.Proc, netid, found && e.Vers == a.Vers)
	if !found {
		fail(rpc.ProgUnavail)
		return
	}
	if e.Vers != a.Vers {
		if indirect {
			low, high, _ := t.VersRange(a.Prog, netid)
			r.out = rpc.AppendProgMismatch(r.out, r.h.XID, low, high)
			r.send = true
		}
		return
	}
	ifs := r.s.cfg.Ifaces
	if indirect {
		// mergeaddr's "is the server there" check, with the caller's address.
		var mb [uaddrBuf]byte
		if _, ok := ifs.AppendMerge(mb[:0], r.c.Addr, nil, e.Addr, netid); !ok {
			r.accept(rpc.ProgUnavail)
			return
		}
	}
	fwd := r.s.cfg.Forwarder
	if fwd == nil {
		// Without -r the reference has no forwarding socket for the netid.
		fail(rpc.SystemErr)
		return
	}
	// The reply's address is merged for the caller; the call goes to the
	// loopback address with the registered port (addrmerge from local_sa).
	uaddr, _ := ifs.AppendMerge(nil, r.c.Addr, nil, e.Addr, netid)
	dstUaddr, ok := ifs.AppendMerge(nil, loopback(netid), nil, e.Addr, netid)
	var dst = loopback(netid)
	if ok {
		ap, ok2 := pmap.Uaddr2AddrPort(pmap.FamilyOfNetid(netid), string(dstUaddr))
		ok = ok2
		dst = ap
	}
	if !ok {
		fail(rpc.SystemErr)
		return
	}
	err := fwd.Forward(&forward.Call{
		XID:       r.h.XID,
		Caller:    r.c.Addr,
		Local:     r.c.Dst,
		Netid:     netid,
		LocalVers: r.h.Vers,
		Indirect:  indirect,
		Prog:      a.Prog,
		Vers:      a.Vers,
		Proc:      a.Proc,
		Cred:      r.h.Cred,
		Args:      a.Args,
		Dst:       dst,
		Uaddr:     string(uaddr),
	})
	switch {
	case err == nil, errors.Is(err, forward.ErrDuplicate):
		// The reply, if any, comes from the forwarder.
	case errors.Is(err, forward.ErrCred):
		if indirect {
			r.tooWeak()
		}
	default:
		fail(rpc.SystemErr)
	}
}

package service

import (
	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/registry"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
	"github.com/openrpcbind/rpcbind/xdr"
)

// serveV34 is rpcb_service_3 and rpcb_service_4 (rpcb_svc.c, rpcb_svc_4.c;
// spec §1.4). The caller has checked the procedure against the version.
func (r *request) serveV34() {
	switch p := pmap.Proc(r.h.Proc); p {
	case pmap.RPCBProcNull:
		r.checkAccess(false, 0)
		r.success()
	case pmap.RPCBProcSet, pmap.RPCBProcUnset:
		r.rpcbChange(p == pmap.RPCBProcSet)
	case pmap.RPCBProcGetAddr:
		r.getAddr(false) // RPCB_ALLVERS in v3 and v4 alike
	case pmap.RPCBProcGetVersAddr:
		r.getAddr(true)
	case pmap.RPCBProcDump:
		if r.checkAccess(false, 0) {
			r.success()
			r.appendShared(r.s.cfg.Table.DumpV3())
		} else {
			r.tooWeak()
		}
	case pmap.RPCBProcCallit, pmap.RPCBProcIndirect:
		r.callit()
	case pmap.RPCBProcGetTime:
		if r.checkAccess(false, 0) {
			r.success()
			// time_t through xdr_u_long: the low 32 bits.
			r.out = xdr.AppendUint32(r.out, uint32(r.s.cfg.Now().Unix()))
		} else {
			r.tooWeak()
		}
	case pmap.RPCBProcUaddr2Taddr:
		r.uaddr2taddr()
	case pmap.RPCBProcTaddr2Uaddr:
		r.taddr2uaddr()
	case pmap.RPCBProcGetAddrList:
		r.getAddrList()
	case pmap.RPCBProcGetStat:
		if r.checkAccess(false, 0) {
			r.getStat()
		} else {
			r.tooWeak()
		}
	}
}

func (r *request) decodeRPCB(a *pmap.RPCB) bool {
	var d xdr.Decoder
	d.Reset(r.args)
	return a.DecodeXDR(&d) == nil
}

// rpcbChange is rpcbproc_set_com / rpcbproc_unset_com. r_owner is ignored:
// the owner comes from the transport (spec §3.2).
func (r *request) rpcbChange(set bool) {
	var a pmap.RPCB
	if !r.decodeRPCB(&a) {
		r.garbage()
		return
	}
	if !r.checkAccess(true, a.Prog) {
		r.tooWeak()
		return
	}
	t := r.s.cfg.Table
	var ok bool
	if set {
		// The strings the entry keeps are its only allocations (issue 13).
		ok = t.Set(registry.Entry{Prog: a.Prog, Vers: a.Vers, Netid: internNetid(a.Netid),
			Addr: string(a.Addr), Owner: access.Owner(r.c)})
		r.s.stats.setDone(r.vi, ok)
	} else {
		var ob [ownerBuf]byte
		ok = t.Unset(a.Prog, a.Vers, string(a.Netid), string(access.AppendOwner(ob[:0], r.c)))
		r.s.stats.unsetDone(r.vi, ok)
	}
	r.success()
	r.out = xdr.AppendBool(r.out, ok)
}

// getAddr is rpcbproc_getaddr_com: the lookup uses the arrival transport's
// netid, not r_netid; a non-empty r_addr is the merge hint; when the merge
// fails the registered address is returned as is.
func (r *request) getAddr(exact bool) {
	var a pmap.RPCB
	if !r.decodeRPCB(&a) {
		r.garbage()
		return
	}
	if !r.checkAccess(false, a.Prog) {
		r.tooWeak()
		return
	}
	netid := r.c.Netid
	addr, found := r.s.cfg.Table.GetAddr(a.Prog, a.Vers, []byte(netid), exact)
	r.success()
	start := len(r.out)
	if found {
		var ok bool
		r.out, ok = r.appendMerged(r.out, netid, addr, a.Addr)
		if !ok {
			r.out = xdr.AppendString(r.out, addr)
		}
	} else {
		r.out = xdr.AppendUint32(r.out, 0)
	}
	// Both GETADDR and GETVERSADDR count under their own version's addrinfo.
	nonEmpty := xdrStringLen(r.out[start:]) != 0
	r.s.stats.getAddr(r.vi, a.Prog, a.Vers, netid, nonEmpty)
}

func xdrStringLen(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// transportFamily is the protocol family of the arrival transport's netconfig.
func (r *request) transportFamily() pmap.Family { return pmap.FamilyOfNetid(r.c.Netid) }

// uaddr2taddr is rpcbproc_uaddr2taddr_com: the uaddr is parsed with the
// arrival transport's family; failure is an empty netbuf, not an error.
func (r *request) uaddr2taddr() {
	var d xdr.Decoder
	d.Reset(r.args)
	// xdr_wrapstring has no limit of its own; the message bounds it.
	u := d.StringBytes(len(r.args))
	if d.Err() != nil {
		r.garbage()
		return
	}
	if !r.checkAccess(false, 0) {
		r.tooWeak()
		return
	}
	nb := pmap.Uaddr2Netbuf(r.transportFamily(), string(u))
	r.success()
	r.out = nb.AppendXDR(r.out)
}

// taddr2uaddr is rpcbproc_taddr2uaddr_com: buf is formatted as an address of
// the arrival transport's family; a netbuf with maxlen over 9000 is
// GARBAGE_ARGS.
func (r *request) taddr2uaddr() {
	var d xdr.Decoder
	d.Reset(r.args)
	var nb pmap.Netbuf
	if nb.DecodeXDR(&d) != nil {
		r.garbage()
		return
	}
	if !r.checkAccess(false, 0) {
		r.tooWeak()
		return
	}
	r.success()
	start := len(r.out)
	r.out = append(r.out, 0, 0, 0, 0)
	r.out = pmap.AppendTaddr2Uaddr(r.out, r.transportFamily(), nb.Buf)
	n := len(r.out) - start - 4
	xdr.PutUint32(r.out[start:], uint32(n))
	r.out = append(r.out, zeroPad[:xdr.Padding(n)]...)
}

// getAddrList is rpcbproc_getaddrlist_4_local: every entry of exactly
// (prog, vers) whose netid has the arrival transport's protocol family,
// merged for the caller. Improvement (DECISIONS): an entry whose netid is not
// in netconfig is skipped; the reference sends no reply at all.
func (r *request) getAddrList() {
	var a pmap.RPCB
	if !r.decodeRPCB(&a) {
		r.garbage()
		return
	}
	if !r.checkAccess(false, a.Prog) {
		r.tooWeak()
		return
	}
	fam := r.transportFamily()
	r.success()
	// The statistic records the outcome of the last merge attempted.
	lastOK := false
	var scratch []byte
	r.s.cfg.Table.ByProgVers(a.Prog, a.Vers, func(e registry.Entry) {
		nc, ok := pmap.LookupNetconfig(e.Netid)
		if !ok || nc.Family != fam || fam == pmap.FamilyUnknown {
			return
		}
		var merged bool
		scratch, merged = r.s.cfg.Ifaces.AppendMerge(scratch[:0], r.c.Addr, a.Addr, e.Addr, e.Netid)
		lastOK = merged && len(scratch) != 0
		if !lastOK {
			return
		}
		r.out = xdr.AppendUint32(r.out, 1) // value follows
		ent := pmap.Entry{Maddr: string(scratch), Netid: nc.Netid, Semantics: nc.Semantics, Protofmly: nc.Protofmly, Proto: nc.Proto}
		r.out = ent.AppendXDR(r.out)
	})
	r.out = xdr.AppendUint32(r.out, 0)
	r.s.stats.getAddr(r.vi, a.Prog, a.Vers, r.c.Netid, lastOK)
}

// getStat is rpcbproc_getstat. Over UDP a reply that cannot fit is known
// from the lists' maintained sizes before anything is built, and answered
// SYSTEM_ERR as the reference's failed svc_sendreply is (the same bytes
// serve would produce after encoding). Otherwise the lists are encoded
// straight into the reply.
func (r *request) getStat() {
	start := len(r.out)
	r.success()
	if isDatagram(r.c) && int64(len(r.out)-start)+r.s.stats.wireSize() > MaxUDPReply {
		r.out = r.out[:start]
		r.accept(rpc.SystemErr)
		return
	}
	r.out = r.s.stats.appendXDR(r.out)
}

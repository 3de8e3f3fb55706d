package service

import (
	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/pmap"
	"github.com/openrpcbind/rpcbind/xdr"
)

// serveV2 is pmap_service (pmap_svc.c; spec §1.3).
func (r *request) serveV2() {
	switch pmap.Proc(r.h.Proc) {
	case pmap.PmapProcNull:
		// check_access runs for logging only; NULL is always answered.
		r.checkAccess(false, 0)
		r.success()
	case pmap.PmapProcSet, pmap.PmapProcUnset:
		r.pmapChange()
	case pmap.PmapProcGetPort:
		r.pmapGetPort()
	case pmap.PmapProcDump:
		if !r.checkAccess(false, 0) {
			r.tooWeak()
			return
		}
		r.success()
		r.appendShared(r.s.cfg.Table.DumpV2())
	case pmap.PmapProcCallit:
		r.callit()
	}
}

func (r *request) decodeMapping(m *pmap.Mapping) bool {
	var d xdr.Decoder
	d.Reset(r.args)
	return m.DecodeXDR(&d) == nil
}

// pmapChange is pmapproc_change: v2 SET and UNSET.
func (r *request) pmapChange() {
	var m pmap.Mapping
	if !r.decodeMapping(&m) {
		r.garbage()
		return
	}
	if !r.checkAccess(true, m.Prog) {
		r.tooWeak()
		return
	}
	t := r.s.cfg.Table
	var ok bool
	if pmap.Proc(r.h.Proc) == pmap.PmapProcSet {
		ok = t.SetV2(m.Prog, m.Vers, m.Prot, m.Port, access.Owner(r.c))
		r.s.stats.setDone(r.vi, ok)
	} else {
		var ob [ownerBuf]byte
		ok = t.UnsetV2(m.Prog, m.Vers, string(access.AppendOwner(ob[:0], r.c)))
		r.s.stats.unsetDone(r.vi, ok)
	}
	r.success()
	r.out = xdr.AppendBool(r.out, ok)
}

// pmapGetPort is pmapproc_getport: the v2 view, no address merge.
func (r *request) pmapGetPort() {
	var m pmap.Mapping
	if !r.decodeMapping(&m) {
		r.garbage()
		return
	}
	if !r.checkAccess(false, m.Prog) {
		r.tooWeak()
		return
	}
	port := r.s.cfg.Table.GetPort(m.Prog, m.Vers, m.Prot)
	r.success()
	r.out = xdr.AppendUint32(r.out, port)
	// The statistic's netid comes from the protocol; "<unknown>" for any
	// other protocol is not in netconfig, so nothing is recorded.
	var netid string
	switch m.Prot {
	case pmap.IPProtoTCP:
		netid = pmap.NetidTCP
	case pmap.IPProtoUDP:
		netid = pmap.NetidUDP
	default:
		return
	}
	r.s.stats.getAddr(r.vi, m.Prog, m.Vers, netid, port != 0)
}

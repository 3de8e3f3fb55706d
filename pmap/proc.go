package pmap

import (
	"strconv"

	"github.com/openrpcbind/rpcbind/xdr"
)

// Program, port and versions (RFC 1833 §3, §4).
const (
	Prog = 100000 // PMAP_PROG, RPCBPROG
	Port = 111    // the well-known port, "sunrpc"

	Vers2 = 2 // PMAP_VERS, the portmapper
	Vers3 = 3 // RPCBVERS
	Vers4 = 4 // RPCBVERS4

	MinVers = Vers2 // low end of PROG_MISMATCH
	MaxVers = Vers4 // high end of PROG_MISMATCH
)

// IP protocol numbers carried in Mapping.Prot (RFC 1833 §3.1).
const (
	IPProtoTCP = 6  // IPPROTO_TCP
	IPProtoUDP = 17 // IPPROTO_UDP
)

// MaxString caps every string and netbuf the server decodes: libtirpc's
// RPC_MAXDATASIZE since the CVE-2017-8779 ("rpcbomb") fix.
const MaxString = xdr.MaxDataSize

// Proc is a procedure number of program 100000. Versions 2, 3 and 4 share
// numbers 0-5 with the same meaning, so one type serves all three.
type Proc uint32

// Portmapper version 2 procedures (RFC 1833 §3.2).
const (
	PmapProcNull    Proc = 0 // PMAPPROC_NULL
	PmapProcSet     Proc = 1 // PMAPPROC_SET
	PmapProcUnset   Proc = 2 // PMAPPROC_UNSET
	PmapProcGetPort Proc = 3 // PMAPPROC_GETPORT
	PmapProcDump    Proc = 4 // PMAPPROC_DUMP
	PmapProcCallit  Proc = 5 // PMAPPROC_CALLIT
)

// rpcbind version 3 and 4 procedures (RFC 1833 §2.2.1, §2.2.2).
const (
	RPCBProcNull        Proc = 0  // RPCBPROC_NULL
	RPCBProcSet         Proc = 1  // RPCBPROC_SET
	RPCBProcUnset       Proc = 2  // RPCBPROC_UNSET
	RPCBProcGetAddr     Proc = 3  // RPCBPROC_GETADDR
	RPCBProcDump        Proc = 4  // RPCBPROC_DUMP
	RPCBProcCallit      Proc = 5  // RPCBPROC_CALLIT (v3), RPCBPROC_BCAST (v4)
	RPCBProcGetTime     Proc = 6  // RPCBPROC_GETTIME
	RPCBProcUaddr2Taddr Proc = 7  // RPCBPROC_UADDR2TADDR
	RPCBProcTaddr2Uaddr Proc = 8  // RPCBPROC_TADDR2UADDR
	RPCBProcGetVersAddr Proc = 9  // RPCBPROC_GETVERSADDR, v4 only
	RPCBProcIndirect    Proc = 10 // RPCBPROC_INDIRECT, v4 only
	RPCBProcGetAddrList Proc = 11 // RPCBPROC_GETADDRLIST, v4 only
	RPCBProcGetStat     Proc = 12 // RPCBPROC_GETSTAT, v4 only

	RPCBProcBcast = RPCBProcCallit // RPCBPROC_BCAST, the v4 name of proc 5
)

// NumProcs is RPCBSTAT_HIGHPROC, the length of the per-procedure counter
// array of every version in rpcb_stat (RFC 1833 §2.2.2).
const NumProcs = 13

// HighProc returns the highest procedure of version vers (5, 8 or 12) and
// false for a version the program does not have.
func HighProc(vers uint32) (Proc, bool) {
	switch vers {
	case Vers2:
		return PmapProcCallit, true
	case Vers3:
		return RPCBProcTaddr2Uaddr, true
	case Vers4:
		return RPCBProcGetStat, true
	}
	return 0, false
}

// procNames are the names rpcbind's logit() prints for procedures 0-12
// (rpcbind src/security.c procmap), shared by all versions.
var procNames = [NumProcs]string{
	"null", "set", "unset", "getport/addr", "dump", "callit", "gettime",
	"uaddr2taddr", "taddr2uaddr", "getversaddr", "indirect", "getaddrlist",
	"getstat",
}

// String returns the name rpcbind logs for p, or its decimal number when it
// is out of range, as logit() does.
func (p Proc) String() string {
	if p < NumProcs {
		return procNames[p]
	}
	return strconv.FormatUint(uint64(p), 10)
}

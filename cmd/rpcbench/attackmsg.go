package main

// Calls of the attack bench (make bench-attack): every message is built
// here, AUTH_NONE, the XID patched by the sender where it matters.

import (
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/openrpcbind/rpcbind/xdr"
)

// Procedures of program 100000 the attack bench sends.
const (
	procSet      = 1  // v3/v4 SET
	procUnset    = 2  // v3/v4 UNSET
	procGetport  = 3  // v2 GETPORT; v3/v4 GETADDR
	procDump     = 4  // DUMP, every version
	procCallit   = 5  // v2/v3 CALLIT
	procIndirect = 10 // v4 INDIRECT
	procGetstat  = 12 // v4 GETSTAT
	ipprotoUDP   = 17
	ipprotoTCP   = 6
)

// rpcbCall is a call to program 100000 with args appended.
func rpcbCall(xid, vers, proc uint32, args []byte) []byte {
	b := make([]byte, 0, 40+len(args))
	for _, w := range []uint32{xid, 0, 2, 100000, vers, proc, 0, 0, 0, 0} {
		b = xdr.AppendUint32(b, w)
	}
	return append(b, args...)
}

// record frames msg as one stream record (RFC 5531 §11).
func record(msg []byte) []byte {
	b := make([]byte, 0, 4+len(msg))
	b = xdr.AppendUint32(b, 0x80000000|uint32(len(msg)))
	return append(b, msg...)
}

// rpcbArgs is struct rpcb.
func rpcbArgs(prog, vers uint32, netid, addr, owner string) []byte {
	b := xdr.AppendUint32(nil, prog)
	b = xdr.AppendUint32(b, vers)
	b = xdr.AppendString(b, netid)
	b = xdr.AppendString(b, addr)
	return xdr.AppendString(b, owner)
}

// fillCalls are the six kinds of small datagrams that each add one entry
// to one of the six GETSTAT lists (addrinfo and rmtinfo of v2, v3, v4) for
// a program nobody registered: v2 GETPORT, v3 and v4 GETADDR, v2 and v3
// CALLIT, v4 INDIRECT. CALLIT and INDIRECT are counted even without -r.
func fillCalls(xid, prog uint32) [6][]byte {
	pm := xdr.AppendUint32(nil, prog)
	pm = xdr.AppendUint32(pm, 1)
	pm = xdr.AppendUint32(pm, ipprotoUDP)
	pm = xdr.AppendUint32(pm, 0)
	rb := rpcbArgs(prog, 1, "udp", "", "")
	ca := xdr.AppendUint32(nil, prog)
	ca = xdr.AppendUint32(ca, 1)
	ca = xdr.AppendUint32(ca, 1)
	ca = xdr.AppendUint32(ca, 0) // empty opaque args
	return [6][]byte{
		rpcbCall(xid, 2, procGetport, pm),
		rpcbCall(xid+1, 3, procGetport, rb),
		rpcbCall(xid+2, 4, procGetport, rb),
		rpcbCall(xid+3, 2, procCallit, ca),
		rpcbCall(xid+4, 3, procCallit, ca),
		rpcbCall(xid+5, 4, procIndirect, ca),
	}
}

// getstatCall is v4 GETSTAT.
func getstatCall(xid uint32) []byte { return rpcbCall(xid, 4, procGetstat, nil) }

// getportProbe is the victim's v2 GETPORT of (100000, 2, tcp): the daemon
// answers 111.
func getportProbe(xid uint32) []byte {
	a := xdr.AppendUint32(nil, 100000)
	a = xdr.AppendUint32(a, 2)
	a = xdr.AppendUint32(a, ipprotoTCP)
	a = xdr.AppendUint32(a, 0)
	return rpcbCall(xid, 2, procGetport, a)
}

// probeOK reports whether r answers getportProbe(xid) with port 111.
func probeOK(r []byte, xid uint32) bool {
	return check(r, xid) == nil && len(r) >= 28 && binary.BigEndian.Uint32(r[24:]) == 111
}

// bigString is n bytes of filler that differs per i.
func bigString(n int, i int) string {
	p := strconv.Itoa(i) + "-"
	return p + strings.Repeat("x", max(0, n-len(p)))
}

// countStatEntries counts the addrinfo and rmtinfo entries of a GETSTAT
// result (rpcb_stat_byvers), -1 when it does not decode. Unlike
// pmap.DecodeStatByVers it has no list cap: the reference's lists grow.
func countStatEntries(res []byte) int {
	var d xdr.Decoder
	d.Reset(res)
	n := 0
	for v := 0; v < 3; v++ {
		for i := 0; i < 13+2; i++ { // info[RPCBSTAT_HIGHPROC], setinfo, unsetinfo
			d.Uint32()
		}
		for d.More() && d.Err() == nil && n < 1<<20 {
			d.Uint32()
			d.Uint32()
			d.Uint32()
			d.Uint32()
			d.String(9000)
			n++
		}
		for d.More() && d.Err() == nil && n < 1<<20 {
			for k := 0; k < 6; k++ {
				d.Uint32()
			}
			d.String(9000)
			n++
		}
	}
	if d.Err() != nil {
		return -1
	}
	return n
}

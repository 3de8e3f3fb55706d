package pmap

import (
	"github.com/openrpcbind/rpcbind/xdr"
)

// NumStatVers is RPCBVERS_STAT: rpcb_stat_byvers holds one rpcb_stat per
// version, index 0 for v2, 1 for v3, 2 for v4.
const NumStatVers = 3

// Stat is rpcb_stat (RFC 1833 §2.2.2, RPCBPROC_GETSTAT):
//
//	struct rpcb_stat { rpcbs_proc info; int setinfo; int unsetinfo;
//	                   rpcbs_addrlist_ptr addrinfo; rpcbs_rmtcalllist_ptr rmtinfo; };
type Stat struct {
	Info               [NumProcs]int32 // calls per procedure
	SetInfo, UnsetInfo int32           // successful SETs and UNSETs
	Addr               []AddrStat      // rpcbs_addrlist, in wire order
	Rmt                []RmtStat       // rpcbs_rmtcalllist, in wire order
}

// AddrStat is one rpcbs_addrlist element: lookups of (prog, vers, netid).
type AddrStat struct {
	Prog, Vers       uint32
	Success, Failure int32
	Netid            string
}

// RmtStat is one rpcbs_rmtcalllist element: remote calls of
// (prog, vers, proc, netid).
type RmtStat struct {
	Prog, Vers, Proc           uint32
	Success, Failure, Indirect int32
	Netid                      string
}

// AppendXDR appends s. Each list is a pointer chain: a "value follows"
// word before every element and a zero after the last.
func (s *Stat) AppendXDR(b []byte) []byte {
	for _, v := range s.Info {
		b = xdr.AppendInt32(b, v)
	}
	b = xdr.AppendInt32(b, s.SetInfo)
	b = xdr.AppendInt32(b, s.UnsetInfo)
	for i := range s.Addr {
		a := &s.Addr[i]
		b = xdr.AppendBool(b, true)
		b = xdr.AppendUint32(b, a.Prog)
		b = xdr.AppendUint32(b, a.Vers)
		b = xdr.AppendInt32(b, a.Success)
		b = xdr.AppendInt32(b, a.Failure)
		b = xdr.AppendString(b, a.Netid)
	}
	b = xdr.AppendBool(b, false)
	for i := range s.Rmt {
		r := &s.Rmt[i]
		b = xdr.AppendBool(b, true)
		b = xdr.AppendUint32(b, r.Prog)
		b = xdr.AppendUint32(b, r.Vers)
		b = xdr.AppendUint32(b, r.Proc)
		b = xdr.AppendInt32(b, r.Success)
		b = xdr.AppendInt32(b, r.Failure)
		b = xdr.AppendInt32(b, r.Indirect)
		b = xdr.AppendString(b, r.Netid)
	}
	return xdr.AppendBool(b, false)
}

// AppendStatByVers appends rpcb_stat_byvers: the three Stats in order.
func AppendStatByVers(b []byte, s *[NumStatVers]Stat) []byte {
	for i := range s {
		b = s[i].AppendXDR(b)
	}
	return b
}

// DecodeXDR reads s, copying its strings; each list stops with
// ErrListTooLong past MaxStatListLen elements.
func (s *Stat) DecodeXDR(d *xdr.Decoder) error {
	if err := s.decode(d); err != nil {
		return err
	}
	return wrap("pmap: decode rpcb_stat", d.Err())
}

func (s *Stat) decode(d *xdr.Decoder) error {
	for i := range s.Info {
		s.Info[i] = d.Int32()
	}
	s.SetInfo = d.Int32()
	s.UnsetInfo = d.Int32()
	s.Addr = s.Addr[:0]
	for d.More() {
		if len(s.Addr) == MaxStatListLen {
			return wrap("pmap: decode rpcbs_addrlist", ErrListTooLong)
		}
		var a AddrStat
		a.Prog = d.Uint32()
		a.Vers = d.Uint32()
		a.Success = d.Int32()
		a.Failure = d.Int32()
		a.Netid = d.String(MaxString)
		if d.Err() != nil {
			break
		}
		s.Addr = append(s.Addr, a)
	}
	s.Rmt = s.Rmt[:0]
	for d.More() {
		if len(s.Rmt) == MaxStatListLen {
			return wrap("pmap: decode rpcbs_rmtcalllist", ErrListTooLong)
		}
		var r RmtStat
		r.Prog = d.Uint32()
		r.Vers = d.Uint32()
		r.Proc = d.Uint32()
		r.Success = d.Int32()
		r.Failure = d.Int32()
		r.Indirect = d.Int32()
		r.Netid = d.String(MaxString)
		if d.Err() != nil {
			break
		}
		s.Rmt = append(s.Rmt, r)
	}
	return nil
}

// DecodeStatByVers decodes a GETSTAT result (rpcb_stat_byvers). Bytes after
// it are ignored.
func DecodeStatByVers(res []byte) ([NumStatVers]Stat, error) {
	var out [NumStatVers]Stat
	var d xdr.Decoder
	d.Reset(res)
	for i := range out {
		if err := out[i].decode(&d); err != nil {
			return [NumStatVers]Stat{}, err
		}
	}
	if err := d.Err(); err != nil {
		return [NumStatVers]Stat{}, wrap("pmap: decode rpcb_stat_byvers", err)
	}
	return out, nil
}

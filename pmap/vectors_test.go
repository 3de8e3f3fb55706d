package pmap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/testvec"
	"github.com/openrpcbind/rpcbind/xdr"
)

// Tests over every exchange of the reference capture (internal/testvec):
// each call's arguments decode and re-encode to the same bytes, and each
// successful reply's results decode and re-encode byte for byte.

type callHdr struct{ vers, proc uint32 }

// parseCall skips an RPC call header (RFC 5531 §9) and returns the
// arguments; ok is false for calls that are not program 100000, RPC v2.
func parseCall(msg []byte) (h callHdr, args []byte, ok bool) {
	var d xdr.Decoder
	d.Reset(msg)
	d.Uint32() // xid
	mtype, rpcvers, prog := d.Uint32(), d.Uint32(), d.Uint32()
	h.vers, h.proc = d.Uint32(), d.Uint32()
	d.Uint32()
	d.Opaque(400) // cred
	d.Uint32()
	d.Opaque(400) // verf
	if d.Err() != nil || mtype != 0 || rpcvers != 2 || prog != Prog {
		return h, nil, false
	}
	return h, d.Rest(), true
}

// parseReply returns the results of a MSG_ACCEPTED/SUCCESS reply.
func parseReply(msg []byte) ([]byte, bool) {
	var d xdr.Decoder
	d.Reset(msg)
	d.Uint32() // xid
	mtype, stat := d.Uint32(), d.Uint32()
	d.Uint32()
	d.Opaque(400) // verf
	accept := d.Uint32()
	if d.Err() != nil || mtype != 1 || stat != 0 || accept != 0 {
		return nil, false
	}
	return d.Rest(), true
}

func familyOf(transport string) Family {
	switch transport {
	case "udp", "tcp":
		return FamilyInet
	case "udp6", "tcp6":
		return FamilyInet6
	}
	return FamilyUnknown
}

func TestVectorsCallArgs(t *testing.T) {
	seen := map[string]int{}
	for _, x := range testvec.Load(t) {
		h, args, ok := parseCall(x.CallMsg())
		if !ok || h.vers < MinVers || h.vers > MaxVers {
			continue
		}
		var d xdr.Decoder
		d.Reset(args)
		var enc []byte
		var err error
		var kind string
		switch p := Proc(h.proc); {
		case h.vers == Vers2 && (p == PmapProcSet || p == PmapProcUnset || p == PmapProcGetPort):
			var m Mapping
			err, kind = m.DecodeXDR(&d), "pmap"
			enc = m.AppendXDR(nil)
		case h.vers == Vers2 && p == PmapProcCallit, h.vers > Vers2 && p == RPCBProcCallit,
			h.vers == Vers4 && p == RPCBProcIndirect:
			var a CallArgs
			err, kind = a.DecodeXDR(&d), "call args"
			enc = a.AppendXDR(nil)
		case h.vers > Vers2 && (p == RPCBProcSet || p == RPCBProcUnset || p == RPCBProcGetAddr),
			h.vers == Vers4 && (p == RPCBProcGetVersAddr || p == RPCBProcGetAddrList):
			var r RPCB
			err, kind = r.DecodeXDR(&d), "rpcb"
			enc = r.AppendXDR(nil)
		case h.vers > Vers2 && p == RPCBProcTaddr2Uaddr:
			var n Netbuf
			err, kind = n.DecodeXDR(&d), "netbuf"
			enc = n.AppendXDR(nil)
		case h.vers > Vers2 && p == RPCBProcUaddr2Taddr:
			s := d.StringBytes(MaxString)
			err, kind = d.Err(), "uaddr"
			enc = xdr.AppendOpaque(nil, s)
		default:
			continue
		}
		if err == nil {
			err = d.Finish()
		}
		switch x.N {
		case 158, 159, 160: // truncated arguments, answered GARBAGE_ARGS
			if !errors.Is(err, xdr.ErrShort) {
				t.Errorf("exchange %d: err %v, want ErrShort", x.N, err)
			}
			continue
		case 77, 135: // netbuf maxlen 10000, answered GARBAGE_ARGS
			if !errors.Is(err, ErrNetbufTooLong) {
				t.Errorf("exchange %d: err %v, want ErrNetbufTooLong", x.N, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("exchange %d (%s): %v", x.N, x.Title, err)
			continue
		}
		if !bytes.Equal(enc, args) {
			t.Errorf("exchange %d %s re-encoded\n%s\nwant\n%s", x.N, kind, testvec.Hex(enc), testvec.Hex(args))
		}
		seen[kind]++
	}
	for _, k := range []string{"pmap", "call args", "rpcb", "netbuf", "uaddr"} {
		if seen[k] == 0 {
			t.Errorf("no %s arguments checked", k)
		}
	}
	t.Logf("arguments checked: %v", seen)
}

func TestVectorsReplies(t *testing.T) {
	seen := map[string]int{}
	for _, x := range testvec.Load(t) {
		h, args, ok := parseCall(x.CallMsg())
		if !ok || x.Reply == nil {
			continue
		}
		res, ok := parseReply(x.ReplyMsg())
		if !ok {
			continue
		}
		p := Proc(h.proc)
		var enc []byte
		var kind string
		switch {
		case h.vers == Vers2 && p == PmapProcDump:
			ms, err := DecodeDumpV2(res)
			if err != nil {
				t.Fatalf("exchange %d: %v", x.N, err)
			}
			enc, kind = AppendDumpV2(nil, ms), "pmaplist"
		case h.vers > Vers2 && p == RPCBProcDump:
			es, err := DecodeDumpV3(res)
			if err != nil {
				t.Fatalf("exchange %d: %v", x.N, err)
			}
			enc, kind = AppendDumpV3(nil, es), "rpcblist"
		case h.vers == Vers4 && p == RPCBProcGetAddrList:
			es, err := DecodeEntryList(res)
			if err != nil {
				t.Fatalf("exchange %d: %v", x.N, err)
			}
			for _, e := range es {
				// Each entry's netconfig fields are those of its netid.
				nc, _ := LookupNetconfig(e.Netid)
				if e.Semantics != nc.Semantics || e.Protofmly != nc.Protofmly || e.Proto != nc.Proto {
					t.Errorf("exchange %d: entry %+v differs from netconfig %+v", x.N, e, nc)
				}
			}
			enc, kind = AppendEntryList(nil, es), "rpcb_entry_list"
		case h.vers == Vers4 && p == RPCBProcGetStat:
			st, err := DecodeStatByVers(res)
			if err != nil {
				t.Fatalf("exchange %d: %v", x.N, err)
			}
			enc, kind = AppendStatByVers(nil, &st), "rpcb_stat_byvers"
		case h.vers > Vers2 && p == RPCBProcUaddr2Taddr:
			// The reference's answer is what Uaddr2Netbuf computes.
			var d xdr.Decoder
			d.Reset(args)
			uaddr := d.String(MaxString)
			if binary.NativeEndian.Uint16([]byte{2, 0}) != 2 {
				continue // the reference's sa_family bytes are little-endian
			}
			nb := Uaddr2Netbuf(familyOf(x.Transport), uaddr)
			enc, kind = nb.AppendXDR(nil), "uaddr2taddr"
		case h.vers > Vers2 && p == RPCBProcTaddr2Uaddr:
			var d xdr.Decoder
			d.Reset(args)
			var n Netbuf
			if err := n.DecodeXDR(&d); err != nil {
				t.Fatalf("exchange %d: %v", x.N, err)
			}
			enc = xdr.AppendString(nil, Taddr2Uaddr(familyOf(x.Transport), n.Buf))
			kind = "taddr2uaddr"
		default:
			continue
		}
		if !bytes.Equal(enc, res) {
			t.Errorf("exchange %d (%s) %s:\n got %s\nwant %s", x.N, x.Title, kind, testvec.Hex(enc), testvec.Hex(res))
		}
		seen[kind]++
	}
	want := map[string]int{"pmaplist": 4, "rpcblist": 9, "rpcb_entry_list": 4, "rpcb_stat_byvers": 4,
		"uaddr2taddr": 14, "taddr2uaddr": 12}
	for k, n := range want {
		if seen[k] != n {
			t.Errorf("%s replies checked: %d, want %d", k, seen[k], n)
		}
	}
}

// results returns the results of exchange n's reply.
func results(t *testing.T, n int) []byte {
	t.Helper()
	x := testvec.Get(t, n)
	res, ok := parseReply(x.ReplyMsg())
	if !ok {
		t.Fatalf("exchange %d: not a SUCCESS reply", n)
	}
	return res
}

// The v2 view is derived from the v3/v4 list (spec §1.5, DECISIONS): the
// entries whose netid is exactly "udp" or "tcp", with UaddrPort's port.
// Exchanges 1/2 and 182/183 are v2 and v4 DUMPs taken back to back.
func TestVectorsV2ViewFromDumpV3(t *testing.T) {
	for _, pair := range [][2]int{{1, 2}, {182, 183}} {
		v2, err := DecodeDumpV2(results(t, pair[0]))
		if err != nil {
			t.Fatal(err)
		}
		v3, err := DecodeDumpV3(results(t, pair[1]))
		if err != nil {
			t.Fatal(err)
		}
		var derived []Mapping
		for _, e := range v3 {
			var prot uint32
			switch e.Netid {
			case "tcp":
				prot = IPProtoTCP
			case "udp":
				prot = IPProtoUDP
			default:
				continue
			}
			port, ok := UaddrPort(e.Addr)
			if !ok {
				continue
			}
			derived = append(derived, Mapping{e.Prog, e.Vers, prot, uint32(port)})
		}
		if len(derived) != len(v2) {
			t.Fatalf("exchanges %v: derived %v, v2 DUMP %v", pair, derived, v2)
		}
		// The reference's mirror is in SET order; per (prot) the order matches.
		for _, m := range v2 {
			found := false
			for _, d := range derived {
				found = found || d == m
			}
			if !found {
				t.Errorf("exchanges %v: v2 entry %+v not derived", pair, m)
			}
		}
	}
}

func TestVectorsStat184(t *testing.T) {
	st, err := DecodeStatByVers(results(t, 184))
	if err != nil {
		t.Fatal(err)
	}
	// Spot checks against the annotations of exchange 184.
	if st[0].Info != [NumProcs]int32{4, 8, 3, 8, 4, 3} || st[0].SetInfo != 5 || st[0].UnsetInfo != 2 {
		t.Errorf("v2 counters %+v", st[0])
	}
	if len(st[0].Addr) != 5 || st[0].Addr[0] != (AddrStat{300099, 1, 0, 1, "tcp"}) {
		t.Errorf("v2 addrinfo %+v", st[0].Addr)
	}
	if len(st[1].Addr) != 8 || len(st[2].Addr) != 8 {
		t.Errorf("addrinfo lengths %d %d", len(st[1].Addr), len(st[2].Addr))
	}
	wantRmt := []RmtStat{
		{300099, 1, 0, 0, 1, 1, "udp"},
		{300001, 1, 0, 2, 0, 1, "udp"},
		{300004, 2, 0, 0, 1, 1, "udp"},
	}
	if len(st[2].Rmt) != len(wantRmt) {
		t.Fatalf("v4 rmtinfo %+v", st[2].Rmt)
	}
	for i := range wantRmt {
		if st[2].Rmt[i] != wantRmt[i] {
			t.Errorf("v4 rmtinfo[%d] = %+v, want %+v", i, st[2].Rmt[i], wantRmt[i])
		}
	}
	if st[2].Info[12] != 4 || st[2].SetInfo != 10 || st[2].UnsetInfo != 4 {
		t.Errorf("v4 counters %+v", st[2])
	}
}

package pmap

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/testvec"
	"github.com/openrpcbind/rpcbind/xdr"
)

// seedResults adds the results of the reference's successful replies to
// calls of (vers, proc) as seeds.
func seedResults(f *testing.F, match func(vers uint32, p Proc) bool) {
	for _, x := range testvec.Load(f) {
		h, _, ok := parseCall(x.CallMsg())
		if !ok || x.Reply == nil || !match(h.vers, Proc(h.proc)) {
			continue
		}
		if res, ok := parseReply(x.ReplyMsg()); ok {
			f.Add(res)
		}
	}
}

// seedArgs adds the arguments of the reference's calls of (vers, proc).
func seedArgs(f *testing.F, match func(vers uint32, p Proc) bool) {
	for _, x := range testvec.Load(f) {
		if h, args, ok := parseCall(x.CallMsg()); ok && match(h.vers, Proc(h.proc)) {
			f.Add(args)
		}
	}
}

func FuzzDecodeMapping(f *testing.F) {
	seedArgs(f, func(v uint32, p Proc) bool { return v == Vers2 && p >= 1 && p <= 3 })
	f.Fuzz(func(t *testing.T, b []byte) {
		var d xdr.Decoder
		d.Reset(b)
		var m Mapping
		if m.DecodeXDR(&d) != nil {
			if len(b) >= 16 {
				t.Fatal("16 bytes did not decode")
			}
			return
		}
		if !bytes.Equal(m.AppendXDR(nil), b[:16]) {
			t.Fatal("round trip differs")
		}
	})
}

func FuzzDecodeRPCB(f *testing.F) {
	seedArgs(f, func(v uint32, p Proc) bool { return v > Vers2 && (p == 1 || p == 2 || p == 3 || p == 9 || p == 11) })
	f.Fuzz(func(t *testing.T, b []byte) {
		var d xdr.Decoder
		d.Reset(b)
		var r RPCB
		if r.DecodeXDR(&d) != nil {
			return
		}
		if len(r.Netid) > MaxString || len(r.Addr) > MaxString || len(r.Owner) > MaxString {
			t.Fatal("string over the cap")
		}
		// Re-encoding gives canonical bytes; they decode to the same value.
		enc := r.AppendXDR(nil)
		if len(enc) != d.Offset() {
			t.Fatalf("re-encoded %d bytes, consumed %d", len(enc), d.Offset())
		}
		var d2 xdr.Decoder
		d2.Reset(enc)
		var r2 RPCB
		if err := r2.DecodeXDR(&d2); err != nil || d2.Finish() != nil || r2.Entry() != r.Entry() {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeCallArgs(f *testing.F) {
	seedArgs(f, func(v uint32, p Proc) bool { return p == 5 || (v == Vers4 && p == 10) })
	f.Fuzz(func(t *testing.T, b []byte) {
		var d xdr.Decoder
		d.Reset(b)
		var a CallArgs
		if a.DecodeXDR(&d) != nil {
			return
		}
		if len(a.Args) > MaxCallArgs || len(a.AppendXDR(nil)) != d.Offset() {
			t.Fatal("bad length")
		}
	})
}

func FuzzDecodeNetbuf(f *testing.F) {
	seedArgs(f, func(v uint32, p Proc) bool { return v > Vers2 && p == RPCBProcTaddr2Uaddr })
	f.Fuzz(func(t *testing.T, b []byte) {
		var d xdr.Decoder
		d.Reset(b)
		var n Netbuf
		if n.DecodeXDR(&d) != nil {
			if d.Err() == nil {
				t.Fatal("error not sticky")
			}
			return
		}
		if n.MaxLen > MaxNetbuf || uint32(len(n.Buf)) > n.MaxLen {
			t.Fatal("netbuf limits not enforced")
		}
		for _, fam := range []Family{FamilyInet, FamilyInet6, FamilyLocal} {
			_ = Taddr2Uaddr(fam, n.Buf)
		}
	})
}

func FuzzDecodeDumpV2(f *testing.F) {
	seedResults(f, func(v uint32, p Proc) bool { return v == Vers2 && p == PmapProcDump })
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := DecodeDumpV2(b)
		if err != nil {
			return
		}
		enc := AppendDumpV2(nil, ms)
		ms2, err := DecodeDumpV2(enc)
		if err != nil || len(ms2) != len(ms) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range ms {
			if ms[i] != ms2[i] {
				t.Fatal("round trip differs")
			}
		}
	})
}

func FuzzDecodeDumpV3(f *testing.F) {
	seedResults(f, func(v uint32, p Proc) bool { return v > Vers2 && p == RPCBProcDump })
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := DecodeDumpV3(b)
		if err != nil {
			return
		}
		es2, err := DecodeDumpV3(AppendDumpV3(nil, es))
		if err != nil || len(es2) != len(es) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range es {
			if es[i] != es2[i] {
				t.Fatal("round trip differs")
			}
		}
	})
}

func FuzzDecodeEntryList(f *testing.F) {
	seedResults(f, func(v uint32, p Proc) bool { return v == Vers4 && p == RPCBProcGetAddrList })
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := DecodeEntryList(b)
		if err != nil {
			return
		}
		es2, err := DecodeEntryList(AppendEntryList(nil, es))
		if err != nil || len(es2) != len(es) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range es {
			if es[i] != es2[i] {
				t.Fatal("round trip differs")
			}
		}
	})
}

func FuzzDecodeStatByVers(f *testing.F) {
	seedResults(f, func(v uint32, p Proc) bool { return v == Vers4 && p == RPCBProcGetStat })
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := DecodeStatByVers(b)
		if err != nil {
			return
		}
		enc := AppendStatByVers(nil, &st)
		st2, err := DecodeStatByVers(enc)
		if err != nil || !bytes.Equal(AppendStatByVers(nil, &st2), enc) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeRmtCallRes(f *testing.F) {
	f.Add(AppendRmtCallRes(nil, "127.0.0.1.21.179", []byte{0, 0, 0, 1}))
	f.Add(AppendCallResult(nil, 1000, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d xdr.Decoder
		d.Reset(b)
		var r RmtCallRes
		if r.DecodeXDR(&d, xdr.MaxDataSize) == nil {
			if got := AppendRmtCallRes(nil, r.Addr, r.Results); len(got) != d.Offset() {
				t.Fatal("length differs")
			}
		}
		d.Reset(b)
		var c CallResult
		if c.DecodeXDR(&d, xdr.MaxDataSize) == nil {
			if got := AppendCallResult(nil, c.Port, c.Res); len(got) != d.Offset() {
				t.Fatal("length differs")
			}
		}
	})
}

var uaddrSeeds = []string{
	"0.0.0.0.0.111", "127.0.0.1.3.232", "::.0.111", "::1.3.232", "fe80::1.3.234", "::ffff:1.2.3.4.0.1",
	"garbage", "127.0.0.1", "::1", "junk", "/run/rpcbind.sock", "1::2::3.0.1", "10.9.8.7.3.232",
	"6761:7262:6167:6521:6761:7262:6167:6521.114.98", "x.-1.99999999999999999999", "",
}

func FuzzParseUaddr(f *testing.F) {
	for _, s := range uaddrSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ap, err := ParseUaddr(s)
		if err != nil {
			return
		}
		// A parsed address formats to a uaddr that parses back to it.
		u := FormatUaddr(ap)
		ap2, err := ParseUaddr(u)
		if err != nil || ap2 != ap {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, ap, u, ap2, err)
		}
		// The strict parser accepts a subset of what libtirpc accepts, with
		// the same result.
		fam := FamilyInet
		if ap.Addr().Is6() {
			fam = FamilyInet6
		}
		if ap3, ok := Uaddr2AddrPort(fam, s); !ok || ap3 != ap {
			t.Fatalf("Uaddr2AddrPort(%q) = %v, %v; ParseUaddr %v", s, ap3, ok, ap)
		}
		// Where netip parses the host too, it agrees.
		host := s[:strings.LastIndexByte(s[:strings.LastIndexByte(s, '.')], '.')]
		if n, err := netip.ParseAddr(host); err == nil && n.Zone() == "" && n.Unmap() != ap.Addr().Unmap() {
			t.Fatalf("host %q: netip %v, ours %v", host, n, ap.Addr())
		}
	})
}

func FuzzUaddr2Taddr(f *testing.F) {
	for _, s := range uaddrSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, fam := range []Family{FamilyInet, FamilyInet6, FamilyLocal, FamilyUnknown} {
			nb := Uaddr2Netbuf(fam, s)
			if nb.Buf == nil {
				continue
			}
			// What UADDR2TADDR returns, TADDR2UADDR turns back into a uaddr
			// with the same address and port.
			u := Taddr2Uaddr(fam, nb.Buf)
			if fam == FamilyLocal {
				if len(u) != len(nb.Buf)-2 || len(u) > 107 {
					t.Fatalf("local %q -> % x -> %q", s, nb.Buf, u)
				}
				continue
			}
			ap, _ := Uaddr2AddrPort(fam, s)
			if ap2, err := ParseUaddr(u); err != nil || ap2 != ap {
				t.Fatalf("%v %q -> % x -> %q (%v), want %v", fam, s, nb.Buf, u, err, ap)
			}
		}
	})
}

func FuzzTaddr2Uaddr(f *testing.F) {
	f.Add([]byte("garbage!garbage!"))
	f.Add([]byte("garbage!garbage!garbage!grbg"))
	f.Add([]byte{1, 0, '/', 't', 'm', 'p'})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, fam := range []Family{FamilyInet, FamilyInet6} {
			u := Taddr2Uaddr(fam, b)
			if u == "" {
				continue
			}
			ap, err := ParseUaddr(u)
			if err != nil {
				t.Fatalf("%v % x -> %q: %v", fam, b, u, err)
			}
			// And back to the same address and port bytes.
			back := Uaddr2Taddr(fam, u)
			if !bytes.Equal(back[2:4], b[2:4]) || ap.Port() != uint16(b[2])<<8|uint16(b[3]) {
				t.Fatalf("port lost: % x -> %q -> % x", b, u, back)
			}
			lo, hi := 4, 8 // sin_addr
			if fam == FamilyInet6 {
				lo, hi = 8, 24 // sin6_addr
			}
			if !bytes.Equal(back[lo:hi], b[lo:hi]) {
				t.Fatalf("address lost: % x -> %q -> % x", b, u, back)
			}
		}
		_ = Taddr2Uaddr(FamilyLocal, b)
	})
}

func FuzzUaddrPort(f *testing.F) {
	for _, s := range uaddrSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		port, ok := UaddrPort(s)
		if !ok {
			if strings.Count(cString(s), ".") >= 2 {
				t.Fatalf("%q: two dots but not ok", s)
			}
			return
		}
		// On a strict uaddr it is the port ParseUaddr finds.
		if ap, err := ParseUaddr(s); err == nil && port != int(ap.Port()) {
			t.Fatalf("%q: UaddrPort %d, ParseUaddr %v", s, port, ap)
		}
	})
}

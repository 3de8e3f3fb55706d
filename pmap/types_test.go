package pmap

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/openrpcbind/rpcbind/xdr"
)

// hx decodes annotated hex: everything after "//" on a line is dropped,
// then all white space.
func hx(t testing.TB, s string) []byte {
	t.Helper()
	var sb strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		sb.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(sb.String())
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// prefix is written before every encoding, so that an encoder that ignores
// its input slice is caught.
var prefix = []byte{0xde, 0xad, 0xbe, 0xef}

func appended(t testing.TB, got []byte) []byte {
	t.Helper()
	if !bytes.HasPrefix(got, prefix) {
		t.Fatalf("encoder dropped the prefix: % x", got)
	}
	return got[len(prefix):]
}

func TestProcString(t *testing.T) {
	want := []string{"null", "set", "unset", "getport/addr", "dump", "callit", "gettime",
		"uaddr2taddr", "taddr2uaddr", "getversaddr", "indirect", "getaddrlist", "getstat"}
	for i, w := range want {
		if got := Proc(i).String(); got != w {
			t.Errorf("Proc(%d) = %q, want %q", i, got, w)
		}
	}
	if got := Proc(13).String(); got != "13" {
		t.Errorf("Proc(13) = %q, want \"13\"", got)
	}
	if got := Proc(0xffffffff).String(); got != "4294967295" {
		t.Errorf("Proc(max) = %q", got)
	}
	if PmapProcGetPort != RPCBProcGetAddr || RPCBProcBcast != 5 || RPCBProcGetStat != 12 {
		t.Error("procedure numbers differ from RFC 1833")
	}
	for vers, want := range map[uint32]Proc{2: 5, 3: 8, 4: 12} {
		if got, ok := HighProc(vers); !ok || got != want {
			t.Errorf("HighProc(%d) = %d, %v", vers, got, ok)
		}
	}
	for _, v := range []uint32{0, 1, 5} {
		if _, ok := HighProc(v); ok {
			t.Errorf("HighProc(%d) ok", v)
		}
	}
}

func TestMapping(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want Mapping
	}{
		{"exchange 8 v2 SET args", `
			000493e1 // pm_prog 300001
			00000001 // pm_vers 1
			00000006 // pm_prot 6 (IPPROTO_TCP)
			000003e8 // pm_port 1000`, Mapping{300001, 1, IPProtoTCP, 1000}},
		{"exchange 12 v2 SET args, port above 16 bits", `
			000493e1 // pm_prog 300001
			00000002 // pm_vers 2
			00000011 // pm_prot 17 (IPPROTO_UDP)
			00011170 // pm_port 70000`, Mapping{300001, 2, IPProtoUDP, 70000}},
		{"exchange 1 DUMP first entry", `
			000186a0 00000004 00000006 0000006f // (100000, 4, tcp, 111)`, Mapping{Prog, 4, IPProtoTCP, Port}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := hx(t, tc.hex)
			var d xdr.Decoder
			d.Reset(b)
			var m Mapping
			if err := m.DecodeXDR(&d); err != nil {
				t.Fatal(err)
			}
			if err := d.Finish(); err != nil {
				t.Fatal(err)
			}
			if m != tc.want {
				t.Fatalf("decoded %+v, want %+v", m, tc.want)
			}
			if got := appended(t, m.AppendXDR(append([]byte(nil), prefix...))); !bytes.Equal(got, b) {
				t.Fatalf("encoded % x, want % x", got, b)
			}
		})
	}
	// Truncated: 12 bytes of a 16-byte pmap.
	var d xdr.Decoder
	d.Reset(hx(t, "000493e1 00000001 00000006"))
	var m Mapping
	if err := m.DecodeXDR(&d); !errors.Is(err, xdr.ErrShort) {
		t.Fatalf("truncated pmap: err %v, want ErrShort", err)
	}
}

func TestRPCB(t *testing.T) {
	tests := []struct {
		name               string
		hex                string
		prog, vers         uint32
		netid, addr, owner string
	}{
		{"exchange 32 v3 SET args", `
			000493e3                            // r_prog 300003
			00000001                            // r_vers 1
			00000003 74637000                   // r_netid "tcp"
			0000000d 302e302e 302e302e 332e3233 32000000 // r_addr "0.0.0.0.3.232"
			00000007 74767072 6f626500          // r_owner "tvprobe"`,
			300003, 1, "tcp", "0.0.0.0.3.232", "tvprobe"},
		{"exchange 38 v3 SET args, empty owner", `
			000493e3                            // r_prog 300003
			00000001                            // r_vers 1
			00000004 74637036                   // r_netid "tcp6"
			00000008 3a3a2e33 2e323338          // r_addr "::.3.238"
			00000000                            // r_owner ""`,
			300003, 1, "tcp6", "::.3.238", ""},
		{"exchange 58 v3 UNSET args, netid in upper case", `
			000493e3                            // r_prog 300003
			00000002                            // r_vers 2
			00000004 55445036                   // r_netid "UDP6"
			00000000                            // r_addr ""
			00000000                            // r_owner ""`,
			300003, 2, "UDP6", "", ""},
		{"exchange 111 v4 GETADDRLIST args with a hint", `
			000493e4                            // r_prog 300004
			00000002                            // r_vers 2
			00000000                            // r_netid ""
			0000000f 3132372e 302e302e 312e302e 31313100 // r_addr "127.0.0.1.0.111"
			00000000                            // r_owner ""`,
			300004, 2, "", "127.0.0.1.0.111", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := hx(t, tc.hex)
			var d xdr.Decoder
			d.Reset(b)
			var r RPCB
			if err := r.DecodeXDR(&d); err != nil {
				t.Fatal(err)
			}
			if err := d.Finish(); err != nil {
				t.Fatal(err)
			}
			if r.Prog != tc.prog || r.Vers != tc.vers || string(r.Netid) != tc.netid ||
				string(r.Addr) != tc.addr || string(r.Owner) != tc.owner {
				t.Fatalf("decoded %+v", r.Entry())
			}
			if got := appended(t, r.AppendXDR(append([]byte(nil), prefix...))); !bytes.Equal(got, b) {
				t.Fatalf("AppendXDR % x, want % x", got, b)
			}
			got := appended(t, AppendRPCB(append([]byte(nil), prefix...), tc.prog, tc.vers, tc.netid, tc.addr, tc.owner))
			if !bytes.Equal(got, b) {
				t.Fatalf("AppendRPCB % x, want % x", got, b)
			}
			e := r.Entry()
			if got := appended(t, e.AppendXDR(append([]byte(nil), prefix...))); !bytes.Equal(got, b) {
				t.Fatalf("RPCBEntry.AppendXDR % x, want % x", got, b)
			}
			var e2 RPCBEntry
			d.Reset(b)
			if err := e2.DecodeXDR(&d); err != nil || e2 != e {
				t.Fatalf("RPCBEntry.DecodeXDR = %+v, %v", e2, err)
			}
		})
	}
}

func TestRPCBErrors(t *testing.T) {
	tests := []struct {
		name string
		hex  string
		want error
	}{
		// Exchange 158: r_netid declares 3 bytes and none follow → GARBAGE_ARGS.
		{"exchange 158 truncated netid", `000493e3 00000001 00000003`, xdr.ErrShort},
		// Exchange 159: no arguments at all.
		{"exchange 159 empty", ``, xdr.ErrShort},
		// A string one byte over RPC_MAXDATASIZE, with the bytes present.
		{"netid over 9000", `000493e3 00000001 00002329` + strings.Repeat("00", 9004), xdr.ErrTooLong},
		// A hostile length word with nothing behind it.
		{"netid length 0xffffffff", `000493e3 00000001 ffffffff`, xdr.ErrTooLong},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d xdr.Decoder
			d.Reset(hx(t, tc.hex))
			var r RPCB
			err := r.DecodeXDR(&d)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "pmap: decode rpcb: ") {
				t.Fatalf("error lacks context: %q", err)
			}
		})
	}
	// Exactly 9000 bytes is allowed (libtirpc's limit is inclusive).
	b := AppendRPCB(nil, 1, 1, strings.Repeat("n", MaxString), "", "")
	var d xdr.Decoder
	d.Reset(b)
	var r RPCB
	if err := r.DecodeXDR(&d); err != nil || len(r.Netid) != MaxString {
		t.Fatalf("9000-byte netid: %v", err)
	}
}

func TestCallArgs(t *testing.T) {
	tests := []struct {
		name             string
		hex              string
		prog, vers, proc uint32
		args             string // hex
	}{
		{"exchange 26 v2 CALLIT args", `
			000493e1 // target prog 300001
			00000001 // target vers 1
			00000000 // target proc 0
			00000000 // args<0>`, 300001, 1, 0, ""},
		{"exchange 27 v2 CALLIT to SET", `
			000186a0 // target prog 100000
			00000002 // target vers 2
			00000001 // target proc 1
			00000010 000493e2 00000001 00000006 000003eb // args<16>`,
			Prog, 2, 1, "000493e20000000100000006000003eb"},
		{"exchange 141 v4 INDIRECT to SET", `
			000186a0 // target prog 100000
			00000004 // target vers 4
			00000001 // target proc 1
			0000002c 000493e2 00000001 00000003 75647000 // args<44>
			0000000d 302e302e 302e302e 332e3234 31000000 //   (continued)
			00000001 78000000                            //   (continued)`,
			Prog, 4, 1, "000493e2000000010000000375647000" + // v4 SET (300002, 1, "udp",
				"0000000d302e302e302e302e332e323431000000" + // "0.0.0.0.3.241",
				"0000000178000000"}, // "x")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := hx(t, tc.hex)
			var d xdr.Decoder
			d.Reset(b)
			var a CallArgs
			if err := a.DecodeXDR(&d); err != nil {
				t.Fatal(err)
			}
			if err := d.Finish(); err != nil {
				t.Fatal(err)
			}
			if a.Prog != tc.prog || a.Vers != tc.vers || a.Proc != tc.proc || hex.EncodeToString(a.Args) != tc.args {
				t.Fatalf("decoded %d/%d/%d % x", a.Prog, a.Vers, a.Proc, a.Args)
			}
			if got := appended(t, a.AppendXDR(append([]byte(nil), prefix...))); !bytes.Equal(got, b) {
				t.Fatalf("encoded % x, want % x", got, b)
			}
		})
	}
	// Args declaring more than remains.
	var d xdr.Decoder
	d.Reset(hx(t, "000493e1 00000001 00000000 00000010 00000000"))
	var a CallArgs
	if err := a.DecodeXDR(&d); !errors.Is(err, xdr.ErrShort) {
		t.Fatalf("err = %v, want ErrShort", err)
	}
}

// The CALLIT results are RFC-derived goldens: the reference ran without -r
// for the capture, so no forwarded result is on the wire.
func TestCallResults(t *testing.T) {
	res := []byte{0, 0, 0, 1, 0xaa}
	// RFC 1833 §3.2 call_result: port, opaque res<>.
	want := hx(t, `000003e8 // port 1000
		00000005 00000001 aa000000 // res<5>`)
	got := appended(t, AppendCallResult(append([]byte(nil), prefix...), 1000, res))
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendCallResult % x, want % x", got, want)
	}
	var d xdr.Decoder
	d.Reset(want)
	var cr CallResult
	if err := cr.DecodeXDR(&d, 100); err != nil || cr.Port != 1000 || !bytes.Equal(cr.Res, res) {
		t.Fatalf("CallResult %+v %v", cr, err)
	}
	// RFC 1833 §2.1 rpcb_rmtcallres: string addr, opaque results<>.
	want = hx(t, `00000010 3132372e 302e302e 312e3231 2e313739 // addr "127.0.0.1.21.179"
		00000005 00000001 aa000000 // results<5>`)
	got = appended(t, AppendRmtCallRes(append([]byte(nil), prefix...), "127.0.0.1.21.179", res))
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendRmtCallRes % x, want % x", got, want)
	}
	d.Reset(want)
	var rr RmtCallRes
	if err := rr.DecodeXDR(&d, 100); err != nil || rr.Addr != "127.0.0.1.21.179" || !bytes.Equal(rr.Results, res) {
		t.Fatalf("RmtCallRes %+v %v", rr, err)
	}
	d.Reset(want)
	if err := rr.DecodeXDR(&d, 4); !errors.Is(err, xdr.ErrTooLong) {
		t.Fatalf("results over max: %v", err)
	}
}

func TestNetbuf(t *testing.T) {
	tests := []struct {
		name   string
		hex    string
		maxlen uint32
		buf    string
	}{
		{"exchange 72 TADDR2UADDR garbage", `
			00000010 // maxlen 16
			00000010 67617262 61676521 67617262 61676521 // buf<16> "garbage!garbage!"`,
			16, "garbage!garbage!"},
		{"exchange 73 short buffer", `
			00000004 // maxlen 4
			00000004 020003e8 // buf<4>`, 4, "\x02\x00\x03\xe8"},
		{"exchange 65 UADDR2TADDR failure reply", `
			00000000 // netbuf maxlen 0
			00000000 // buf<0>`, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := hx(t, tc.hex)
			var d xdr.Decoder
			d.Reset(b)
			var n Netbuf
			if err := n.DecodeXDR(&d); err != nil {
				t.Fatal(err)
			}
			if err := d.Finish(); err != nil {
				t.Fatal(err)
			}
			if n.MaxLen != tc.maxlen || string(n.Buf) != tc.buf {
				t.Fatalf("decoded %d %q", n.MaxLen, n.Buf)
			}
			if got := appended(t, n.AppendXDR(append([]byte(nil), prefix...))); !bytes.Equal(got, b) {
				t.Fatalf("encoded % x, want % x", got, b)
			}
		})
	}
	errTests := []struct {
		name string
		hex  string
		want error
	}{
		// Exchange 77: maxlen 10000 with a valid 16-byte buffer → GARBAGE_ARGS.
		{"exchange 77 maxlen 10000", `
			00002710 // maxlen 10000
			00000010 020003e8 7f000001 00000000 00000000 // buf<16>`, ErrNetbufTooLong},
		// xdr_bytes refuses len > maxlen.
		{"len above maxlen", `00000004 00000008 00000000 00000000`, xdr.ErrTooLong},
		{"truncated buffer", `00000010 00000010 00000000`, xdr.ErrShort},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			var d xdr.Decoder
			d.Reset(hx(t, tc.hex))
			var n Netbuf
			err := n.DecodeXDR(&d)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if d.Err() == nil || d.Finish() == nil {
				t.Fatal("decoder not left failed")
			}
		})
	}
}

func TestEntry(t *testing.T) {
	// Exchange 110, second rpcb_entry.
	b := hx(t, `
		00000009 3a3a312e 332e3233 38000000 // r_maddr<9> "::1.3.238"
		00000004 74637036                   // r_nc_netid<4> "tcp6"
		00000003                            // r_nc_semantics 3 (NC_TPI_COTS_ORD)
		00000005 696e6574 36000000          // r_nc_protofmly<5> "inet6"
		00000003 74637000                   // r_nc_proto<3> "tcp"`)
	want := Entry{Maddr: "::1.3.238", Netid: "tcp6", Semantics: NCTPICotsOrd, Protofmly: "inet6", Proto: "tcp"}
	var d xdr.Decoder
	d.Reset(b)
	var e Entry
	if err := e.DecodeXDR(&d); err != nil || e != want {
		t.Fatalf("decoded %+v, %v", e, err)
	}
	if got := appended(t, want.AppendXDR(append([]byte(nil), prefix...))); !bytes.Equal(got, b) {
		t.Fatalf("encoded % x, want % x", got, b)
	}
	nc, ok := LookupNetconfig("tcp6")
	if !ok {
		t.Fatal("no tcp6 netconfig")
	}
	if got := (Entry{Maddr: "::1.3.238", Netid: nc.Netid, Semantics: nc.Semantics, Protofmly: nc.Protofmly, Proto: nc.Proto}); got != want {
		t.Fatalf("entry from netconfig %+v, want %+v", got, want)
	}
}

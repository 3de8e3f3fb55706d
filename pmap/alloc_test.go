package pmap

import (
	"net/netip"
	"testing"

	"github.com/openrpcbind/rpcbind/xdr"
)

// Request decoding and reply encoding on the server's hot paths must not
// allocate (STYLE habit 9).

var (
	rpcbArgs = AppendRPCB(nil, 300003, 1, "tcp", "0.0.0.0.3.232", "tvprobe") // exchange 32
	pmapArgs = (&Mapping{300001, 1, IPProtoTCP, 1000}).AppendXDR(nil)        // exchange 8
)

func TestAllocs(t *testing.T) {
	var d xdr.Decoder
	var r RPCB
	var m Mapping
	var a CallArgs
	var n Netbuf
	buf := make([]byte, 0, 512)
	callArgs := (&CallArgs{300001, 1, 0, []byte{1, 2, 3, 4}}).AppendXDR(nil)
	netbuf := (&Netbuf{16, make([]byte, 16)}).AppendXDR(nil)
	ap := netip.MustParseAddrPort("[::ffff:1.2.3.4]:1000")
	tests := []struct {
		name string
		fn   func()
	}{
		{"RPCB.DecodeXDR", func() { d.Reset(rpcbArgs); _ = r.DecodeXDR(&d) }},
		{"RPCB.AppendXDR", func() { buf = r.AppendXDR(buf[:0]) }},
		{"AppendRPCB", func() { buf = AppendRPCB(buf[:0], 1, 2, "udp", "0.0.0.0.0.111", "superuser") }},
		{"Mapping.DecodeXDR", func() { d.Reset(pmapArgs); _ = m.DecodeXDR(&d) }},
		{"Mapping.AppendXDR", func() { buf = m.AppendXDR(buf[:0]) }},
		{"CallArgs.DecodeXDR", func() { d.Reset(callArgs); _ = a.DecodeXDR(&d) }},
		{"Netbuf.DecodeXDR", func() { d.Reset(netbuf); _ = n.DecodeXDR(&d) }},
		{"AppendCallResult", func() { buf = AppendCallResult(buf[:0], 1000, callArgs) }},
		{"AppendRmtCallRes", func() { buf = AppendRmtCallRes(buf[:0], "127.0.0.1.3.232", callArgs) }},
		{"ParseUaddr v4", func() { _, _ = ParseUaddr("127.0.0.1.3.232") }},
		{"ParseUaddr v6", func() { _, _ = ParseUaddr("fe80::1:2.3.232") }},
		{"ParseUaddr bad", func() { _, _ = ParseUaddr("junk") }},
		{"Uaddr2AddrPort", func() { _, _ = Uaddr2AddrPort(FamilyInet, "127.0.0.2.0.0") }},
		{"AppendUaddr", func() { buf = AppendUaddr(buf[:0], ap) }},
		{"UaddrPort", func() { _, _ = UaddrPort("0.0.0.0.3.232") }},
		{"AppendTaddr2Uaddr", func() { buf = AppendTaddr2Uaddr(buf[:0], FamilyInet, netbuf[8:]) }},
		{"FamilyOfNetid", func() { _ = FamilyOfNetid("tcp6") }},
	}
	for _, tc := range tests {
		if n := testing.AllocsPerRun(100, tc.fn); n != 0 {
			t.Errorf("%s: %v allocations, want 0", tc.name, n)
		}
	}
}

func BenchmarkRPCBDecode(b *testing.B) {
	b.ReportAllocs()
	var d xdr.Decoder
	var r RPCB
	for b.Loop() {
		d.Reset(rpcbArgs)
		if err := r.DecodeXDR(&d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRPCBAppend(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 128)
	for b.Loop() {
		buf = AppendRPCB(buf[:0], 300003, 1, "tcp", "0.0.0.0.3.232", "superuser")
	}
}

func BenchmarkMappingDecode(b *testing.B) {
	b.ReportAllocs()
	var d xdr.Decoder
	var m Mapping
	for b.Loop() {
		d.Reset(pmapArgs)
		if err := m.DecodeXDR(&d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMappingAppend(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 64)
	m := Mapping{300001, 1, IPProtoTCP, 1000}
	for b.Loop() {
		buf = m.AppendXDR(buf[:0])
	}
}

func BenchmarkParseUaddr(b *testing.B) {
	b.ReportAllocs()
	for _, s := range []string{"127.0.0.1.3.232", "fe80::1:2.3.232"} {
		b.Run(s, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseUaddr(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendUaddr(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 64)
	ap := netip.MustParseAddrPort("[fe80::1:2]:1000")
	for b.Loop() {
		buf = AppendUaddr(buf[:0], ap)
	}
}

func BenchmarkDecodeDumpV3(b *testing.B) {
	b.ReportAllocs()
	var es []RPCBEntry
	for i := 0; i < 12; i++ {
		es = append(es, RPCBEntry{Prog, 4, "tcp6", "::.0.111", "superuser"})
	}
	res := AppendDumpV3(nil, es)
	for b.Loop() {
		if _, err := DecodeDumpV3(res); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendStatByVers(b *testing.B) {
	b.ReportAllocs()
	var st [NumStatVers]Stat
	for i := range st {
		for j := 0; j < 8; j++ {
			st[i].Addr = append(st[i].Addr, AddrStat{300004, 1, 3, 0, "udp"})
		}
		st[i].Rmt = append(st[i].Rmt, RmtStat{300001, 1, 0, 2, 0, 1, "udp"})
	}
	buf := make([]byte, 0, 4096)
	for b.Loop() {
		buf = AppendStatByVers(buf[:0], &st)
	}
}

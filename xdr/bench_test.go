package xdr_test

import (
	"bytes"
	"testing"

	refxdr "github.com/davecgh/go-xdr/xdr2"

	"github.com/openrpcbind/rpcbind/xdr"
)

// mapping is struct pmap (RFC 1833 §3): the portmapper's unit of work.
type mapping struct{ Prog, Vers, Prot, Port uint32 }

var mappingWire = h("000493e1 00000001 00000006 000003e8") // (300001, 1, tcp, 1000)

func BenchmarkDecodeMapping(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		var d xdr.Decoder
		var m mapping
		for b.Loop() {
			d.Reset(mappingWire)
			m = mapping{d.Uint32(), d.Uint32(), d.Uint32(), d.Uint32()}
			if d.Err() != nil {
				b.Fatal(d.Err())
			}
		}
		if m.Port != 1000 {
			b.Fatal(m)
		}
	})
	b.Run("refxdr", func(b *testing.B) {
		b.ReportAllocs()
		var m mapping
		r := bytes.NewReader(nil)
		for b.Loop() {
			r.Reset(mappingWire)
			if _, err := refxdr.UnmarshalLimited(r, &m, xdr.MaxDataSize); err != nil {
				b.Fatal(err)
			}
		}
		if m.Port != 1000 {
			b.Fatal(m)
		}
	})
}

func BenchmarkEncodeMapping(b *testing.B) {
	m := mapping{300001, 1, 6, 1000}
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 64)
		for b.Loop() {
			buf = xdr.AppendUint32(buf[:0], m.Prog)
			buf = xdr.AppendUint32(buf, m.Vers)
			buf = xdr.AppendUint32(buf, m.Prot)
			buf = xdr.AppendUint32(buf, m.Port)
		}
		if !bytes.Equal(buf, mappingWire) {
			b.Fatal("mismatch")
		}
	})
	b.Run("refxdr", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			if _, err := refxdr.Marshal(&buf, &m); err != nil {
				b.Fatal(err)
			}
		}
		if !bytes.Equal(buf.Bytes(), mappingWire) {
			b.Fatal("mismatch")
		}
	})
}

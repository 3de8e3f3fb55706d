package rpc

import (
	"bytes"
	"testing"

	refxdr "github.com/davecgh/go-xdr/xdr2"

	"github.com/openrpcbind/rpcbind/internal/testvec"
	"github.com/openrpcbind/rpcbind/xdr"
)

// refGetport is a GETPORT call in refxdr's reflection shape: the rpc_msg
// call header with AUTH_NONE cred and verf, then struct pmap.
type refGetport struct {
	XID, MsgType, RPCVers, Prog, Vers, Proc uint32
	CredFlavor                              uint32
	CredBody                                []byte
	VerfFlavor                              uint32
	VerfBody                                []byte
	MProg, MVers, MProt, MPort              uint32
}

// refAccepted is an accepted SUCCESS reply carrying one uint32 (a port).
type refAccepted struct {
	XID, MsgType, ReplyStat, VerfFlavor uint32
	VerfBody                            []byte
	AcceptStat, Port                    uint32
}

func BenchmarkDecodeGetport(b *testing.B) {
	call := testvec.Get(b, 14).CallMsg() // v2 GETPORT over udp, (300001, 1, tcp)
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		var h CallHeader
		var d xdr.Decoder
		var port uint32
		for b.Loop() {
			args, err := ParseCall(call, &h)
			if err != nil {
				b.Fatal(err)
			}
			d.Reset(args)
			_, _, _ = d.Uint32(), d.Uint32(), d.Uint32()
			port = d.Uint32()
			if d.Err() != nil {
				b.Fatal(d.Err())
			}
		}
		_ = port
	})
	b.Run("refxdr", func(b *testing.B) {
		b.ReportAllocs()
		var m refGetport
		r := bytes.NewReader(nil)
		for b.Loop() {
			r.Reset(call)
			if _, err := refxdr.UnmarshalLimited(r, &m, MaxAuthBytes); err != nil {
				b.Fatal(err)
			}
		}
		if m.MProg != 300001 {
			b.Fatal(m)
		}
	})
}

func BenchmarkEncodeGetportReply(b *testing.B) {
	want := testvec.Get(b, 14).ReplyMsg()
	b.Run("ours", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 64)
		for b.Loop() {
			buf = AppendAccepted(buf[:0], 0x7476000e, Success)
			buf = xdr.AppendUint32(buf, 1000)
		}
		if !bytes.Equal(buf, want) {
			b.Fatalf("%x != %x", buf, want)
		}
	})
	b.Run("refxdr", func(b *testing.B) {
		b.ReportAllocs()
		var buf bytes.Buffer
		m := refAccepted{XID: 0x7476000e, MsgType: 1, Port: 1000}
		for b.Loop() {
			buf.Reset()
			if _, err := refxdr.Marshal(&buf, &m); err != nil {
				b.Fatal(err)
			}
		}
		if !bytes.Equal(buf.Bytes(), want) {
			b.Fatalf("%x != %x", buf.Bytes(), want)
		}
	})
}

func BenchmarkRecordReader(b *testing.B) {
	call := testvec.Get(b, 5).Call // v2 NULL over tcp, with its record mark
	stream := bytes.Repeat(call, 1000)
	r := bytes.NewReader(stream)
	rr := NewRecordReader(r, MaxRecord)
	b.ReportAllocs()
	b.SetBytes(int64(len(call)))
	for b.Loop() {
		if _, err := rr.Next(); err != nil {
			r.Reset(stream)
			rr.Reset(r)
		}
	}
}

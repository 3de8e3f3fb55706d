package rpc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/testvec"
)

// FuzzParseCall: no panic; on success the arguments are the tail of the
// message, the bodies respect MaxAuthBytes, and re-encoding the header with
// AppendCall then parsing it again gives the same header.
func FuzzParseCall(f *testing.F) {
	for _, x := range testvec.Load(f) {
		f.Add(x.CallMsg())
	}
	f.Add(h("00000009 00000000 00000002 000186a0 00000002 00000000 00000001 ffffffff"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		var hdr CallHeader
		args, err := ParseCall(msg, &hdr)
		if err != nil {
			if args != nil {
				t.Fatal("args on error")
			}
			if len(msg) >= 4 && hdr.XID != binary.BigEndian.Uint32(msg) {
				t.Fatal("xid not kept")
			}
			return
		}
		if len(hdr.Cred.Body) > MaxAuthBytes || len(hdr.Verf.Body) > MaxAuthBytes || hdr.RPCVers != 2 {
			t.Fatalf("limits: %+v", hdr)
		}
		if len(args) > 0 && &args[len(args)-1] != &msg[len(msg)-1] {
			t.Fatal("args are not the message tail")
		}
		CheckCred(&hdr) // must not panic
		b := AppendCall(nil, hdr.XID, hdr.Prog, hdr.Vers, hdr.Proc, &hdr.Cred)
		var h2 CallHeader
		rest, err := ParseCall(b, &h2)
		if err != nil || len(rest) != 0 || h2.XID != hdr.XID || h2.Prog != hdr.Prog || h2.Vers != hdr.Vers ||
			h2.Proc != hdr.Proc || h2.Cred.Flavor != hdr.Cred.Flavor || !bytes.Equal(h2.Cred.Body, hdr.Cred.Body) {
			t.Fatalf("round trip: %v %+v %+v", err, h2, hdr)
		}
	})
}

// FuzzAuthSys: Decode never panics and what it accepts re-encodes to a body
// that decodes to the same value.
func FuzzAuthSys(f *testing.F) {
	for _, x := range testvec.Load(f) {
		var hdr CallHeader
		if _, err := ParseCall(x.CallMsg(), &hdr); err == nil && hdr.Cred.Flavor == AuthSys {
			f.Add(hdr.Cred.Body)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var a, b AuthSysParams
		if a.Decode(body) != nil {
			return
		}
		if err := b.Decode(a.AppendXDR(nil)); err != nil || a.Stamp != b.Stamp || a.UID != b.UID ||
			a.GID != b.GID || a.NGIDs != b.NGIDs || a.GIDs != b.GIDs || !bytes.Equal(a.MachineName, b.MachineName) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzParseReply: no panic; SUCCESS results are the message tail; a
// ReplyError re-encodes (for the kinds we build) to a prefix of the input.
func FuzzParseReply(f *testing.F) {
	for _, x := range testvec.Load(f) {
		if r := x.ReplyMsg(); r != nil {
			f.Add(r, uint32(0x74760000+x.N))
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte, xid uint32) {
		res, err := ParseReply(msg, xid)
		var re *ReplyError
		switch {
		case err == nil:
			if len(res) > 0 && &res[len(res)-1] != &msg[len(msg)-1] {
				t.Fatal("results are not the message tail")
			}
		case errors.As(err, &re):
			_ = re.Error()
			if re.Stat == MsgDenied && re.RejectStat == AuthError {
				if !bytes.HasPrefix(msg, AppendAuthError(nil, xid, re.AuthStat)) {
					t.Fatal("auth error does not re-encode")
				}
			}
		}
	})
}

// FuzzRecordReader compares the reader with a direct model of RFC 5531
// §11 over the same bytes: the same records, then an error of the same
// kind, and never a record over the cap.
func FuzzRecordReader(f *testing.F) {
	var stream []byte
	for _, x := range testvec.Load(f) {
		if x.Stream() {
			f.Add(x.Call, uint16(MaxRecord))
			stream = append(stream, x.Call...)
		}
	}
	f.Add(stream, uint16(MaxRecord))
	f.Add(cat(frag(false, []byte("ab")), frag(true, nil)), uint16(100))
	f.Add(frag(true, nil), uint16(100))
	f.Add(h("ffffffff"), uint16(100))
	f.Fuzz(func(t *testing.T, in []byte, limit uint16) {
		max := max(int(limit), 1)
		rr := NewRecordReader(bytes.NewReader(in), max)
		want, wantErr := modelRecords(in, max)
		for i := 0; ; i++ {
			rec, err := rr.Next()
			if err != nil {
				if i != len(want) || err != wantErr {
					t.Fatalf("after %d records: %v; model: %d records, %v", i, err, len(want), wantErr)
				}
				return
			}
			if len(rec) > max || i >= len(want) || !bytes.Equal(rec, want[i]) {
				t.Fatalf("record %d differs from the model", i)
			}
		}
	})
}

func modelRecords(in []byte, max int) (recs [][]byte, err error) {
	for {
		if len(in) == 0 {
			return recs, io.EOF
		}
		var rec []byte
		for frags := 0; ; frags++ {
			if frags == MaxFragments {
				return recs, ErrTooManyFrags
			}
			if len(in) < 4 {
				return recs, io.ErrUnexpectedEOF
			}
			m := binary.BigEndian.Uint32(in)
			n := int(m &^ (1 << 31))
			in = in[4:]
			if len(rec)+n > max {
				return recs, ErrRecordTooLarge
			}
			if n > len(in) {
				return recs, io.ErrUnexpectedEOF
			}
			rec = append(rec, in[:n]...)
			in = in[n:]
			if m>>31 == 1 {
				break
			}
		}
		if len(rec) == 0 {
			return recs, ErrEmptyRecord
		}
		recs = append(recs, rec)
	}
}

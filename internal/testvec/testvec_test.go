package testvec

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

func TestLoadAll(t *testing.T) {
	xs := Load(t)
	if len(xs) != 186 {
		t.Fatalf("got %d exchanges, want 186", len(xs))
	}
	replies := 0
	for i, x := range xs {
		if x.N != i+1 {
			t.Errorf("exchange at index %d is numbered %d", i, x.N)
		}
		if x.Reply != nil {
			replies++
		}
		if len(x.Call)%4 != 0 || len(x.Reply)%4 != 0 {
			t.Errorf("exchange %d: lengths not word aligned", x.N)
		}
		// Every call carries the XID 0x74760000+n (README: XIDs run upward
		// from 0x74760001 in exchange order), and every reply echoes it.
		want := uint32(0x74760000 + x.N)
		if got := binary.BigEndian.Uint32(x.CallMsg()); got != want {
			t.Errorf("exchange %d: call xid %#x, want %#x", x.N, got, want)
		}
		if r := x.ReplyMsg(); r != nil {
			if got := binary.BigEndian.Uint32(r); got != want {
				t.Errorf("exchange %d: reply xid %#x, want %#x", x.N, got, want)
			}
		}
		if x.Title == "" || x.From == "" || x.To == "" {
			t.Errorf("exchange %d: missing title or addresses: %+v", x.N, x)
		}
	}
	if replies != 177 {
		t.Errorf("got %d replies, want 177", replies)
	}
}

func TestKnownExchanges(t *testing.T) {
	xs := Load(t)

	x1, ok := ByNumber(xs, 1)
	if !ok {
		t.Fatal("no exchange 1")
	}
	if x1.Title != "v2 DUMP over udp, fresh daemon" || x1.Transport != "udp" ||
		x1.From != "127.0.0.1:53855" || x1.To != "127.0.0.1:111" || x1.Note != "" {
		t.Errorf("exchange 1 header: %+v", x1)
	}
	wantCall := []byte{
		0x74, 0x76, 0x00, 0x01, // xid
		0, 0, 0, 0, // CALL
		0, 0, 0, 2, // rpcvers
		0x00, 0x01, 0x86, 0xa0, // prog 100000
		0, 0, 0, 2, // vers
		0, 0, 0, 4, // DUMP
		0, 0, 0, 0, 0, 0, 0, 0, // cred
		0, 0, 0, 0, 0, 0, 0, 0, // verf
	}
	if !bytes.Equal(x1.Call, wantCall) {
		t.Errorf("exchange 1 call:\n got %s\nwant %s", Hex(x1.Call), Hex(wantCall))
	}
	if len(x1.Reply) != 24+6*20+4 {
		t.Errorf("exchange 1 reply is %d bytes", len(x1.Reply))
	}

	x5 := Get(t, 5) // v2 NULL over tcp: record marks kept
	if !x5.Stream() || x5.Transport != "tcp" {
		t.Fatalf("exchange 5: %+v", x5)
	}
	if binary.BigEndian.Uint32(x5.Call) != 0x80000028 || len(x5.Call) != 44 {
		t.Errorf("exchange 5 call does not start with its record mark: %s", Hex(x5.Call))
	}
	if len(x5.CallMsg()) != 40 || len(x5.ReplyMsg()) != 24 {
		t.Errorf("exchange 5 stripped lengths %d, %d", len(x5.CallMsg()), len(x5.ReplyMsg()))
	}

	x6 := Get(t, 6)
	if x6.Transport != "udp6" || x6.From != "[::1]:38702" || x6.To != "[::1]:111" {
		t.Errorf("exchange 6: %+v", x6)
	}

	x165 := Get(t, 165)
	if x165.Reply != nil || x165.ReplyMsg() != nil {
		t.Errorf("exchange 165 has a reply")
	}
	if !strings.Contains(x165.Note, "closed the TCP connection") {
		t.Errorf("exchange 165 note %q", x165.Note)
	}

	if _, ok := ByNumber(xs, 187); ok {
		t.Error("exchange 187 exists")
	}
}

func TestLoadCopies(t *testing.T) {
	a := Load(t)
	a[0].Call[0] = 0xff
	if b := Load(t); b[0].Call[0] != 0x74 {
		t.Fatal("Load shares bytes between calls")
	}
}

func TestStripRecordMark(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte // nil: malformed
	}{
		{"one fragment", []byte{0x80, 0, 0, 4, 1, 2, 3, 4}, []byte{1, 2, 3, 4}},
		{"two fragments", []byte{0, 0, 0, 2, 1, 2, 0x80, 0, 0, 2, 3, 4}, []byte{1, 2, 3, 4}},
		{"empty last fragment", []byte{0, 0, 0, 2, 1, 2, 0x80, 0, 0, 0}, []byte{1, 2}},
		{"empty record", []byte{0x80, 0, 0, 0}, []byte{}},
		{"no last fragment", []byte{0, 0, 0, 2, 1, 2}, nil},
		{"short payload", []byte{0x80, 0, 0, 8, 1, 2}, nil},
		{"trailing bytes", []byte{0x80, 0, 0, 1, 1, 9}, nil},
		{"short mark", []byte{0x80, 0}, nil},
	} {
		got := StripRecordMark(tc.in)
		if (got == nil) != (tc.want == nil) || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{
		"## t\nexchange: 1\ntransport: udp, from a to b\ncall:\n  0000000\n",           // 7 digits
		"## t\nexchange: 1\ntransport: sctp, from a to b\ncall:\n  00000000\n",         // transport
		"## t\nexchange: 1\ntransport: udp, from a to b\ncall:\n  00000000\nbogus\n",   // stray line
		"## t\nexchange: 1\ntransport: udp, from a to b\n",                             // no call
		"## t\nexchange: 1\ntransport: tcp, from a to b\ncall:\n  80000008 00000000\n", // short record
		"exchange: 1\n", // before first title
	} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("Parse accepted %q", in)
		}
	}
}

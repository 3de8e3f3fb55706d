package rpc

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/testvec"
	"github.com/openrpcbind/rpcbind/xdr"
)

// h decodes annotated hex: words separated by spaces, "//" comments to the
// end of the line.
func h(s string) []byte {
	var out []byte
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		b, err := hex.DecodeString(strings.Join(strings.Fields(line), ""))
		if err != nil {
			panic(err)
		}
		out = append(out, b...)
	}
	return out
}

func TestParseCallHostile(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  []byte
		err  error
		xid  uint32 // expected h.XID when it must be valid
	}{
		{"empty", nil, ErrShortHeader, 0},
		{"xid only", h("00000001"), ErrShortHeader, 1},
		{"reply", h(`00000001 00000001 // xid, REPLY
			00000000 00000000 00000000 00000000`), ErrNotCall, 1},
		{"msg_type 7", h("00000001 00000007 00000002"), ErrNotCall, 1},
		{"no rpcvers", h("00000009 00000000"), ErrShortHeader, 9},
		{"rpcvers 3, nothing else", h("00000009 00000000 00000003"), ErrRPCVersion, 9},
		{"rpcvers 0xffffffff", h("00000009 00000000 ffffffff 000186a0"), ErrRPCVersion, 9},
		{"no proc", h("00000009 00000000 00000002 000186a0 00000002"), ErrShortHeader, 9},
		{"no cred", h("00000009 00000000 00000002 000186a0 00000002 00000000"), ErrShortHeader, 9},
		{"cred length 401", h(`00000009 00000000 00000002 000186a0 00000002 00000000
			00000001 00000191 // AUTH_SYS, length 401 (MAX_AUTH_BYTES is 400)`), ErrBadCred, 9},
		{"cred length 0xffffffff", h(`00000009 00000000 00000002 000186a0 00000002 00000000
			00000001 ffffffff`), ErrBadCred, 9},
		{"cred body truncated", h(`00000009 00000000 00000002 000186a0 00000002 00000000
			00000001 00000064 00000000 // declares 100, 4 follow`), ErrShortHeader, 9},
		{"cred padding missing", h(`00000009 00000000 00000002 000186a0 00000002 00000000
			00000063 00000001 aa // 1 byte, 3 bytes of padding absent`), ErrShortHeader, 9},
		{"no verf", h(`00000009 00000000 00000002 000186a0 00000002 00000000
			00000000 00000000`), ErrShortHeader, 9},
		{"verf length 401", h(`00000009 00000000 00000002 000186a0 00000002 00000000
			00000000 00000000 00000000 00000191`), ErrBadVerf, 9},
		{"verf truncated", h(`00000009 00000000 00000002 000186a0 00000002 00000000
			00000000 00000000 00000000 00000008 00000000`), ErrShortHeader, 9},
	} {
		var hdr CallHeader
		args, err := ParseCall(tc.msg, &hdr)
		if err != tc.err || args != nil {
			t.Errorf("%s: got %v (args %v), want %v", tc.name, err, args, tc.err)
		}
		if hdr.XID != tc.xid {
			t.Errorf("%s: xid %d, want %d", tc.name, hdr.XID, tc.xid)
		}
		if tc.err == ErrBadCred && (hdr.Prog != 100000 || hdr.Vers != 2) {
			t.Errorf("%s: prog/vers not kept: %+v", tc.name, hdr)
		}
	}
}

// Every strict prefix of a reference call shorter than its header is
// rejected; no prefix panics.
func TestParseCallTruncations(t *testing.T) {
	for _, n := range []int{7, 13, 14, 165} {
		msg := testvec.Get(t, n).CallMsg()
		var hdr CallHeader
		full, err := ParseCall(msg, &hdr)
		if n == 165 {
			full = msg[12:] // rpcvers 3: header ends at rpcvers
		} else if err != nil {
			t.Fatal(err)
		}
		hdrLen := len(msg) - len(full)
		for i := range len(msg) {
			_, err := ParseCall(msg[:i], &hdr)
			if i < hdrLen && err == nil {
				t.Errorf("#%d: %d-byte prefix of a %d-byte header accepted", n, i, hdrLen)
			}
			if i >= hdrLen && n != 165 && err != nil {
				t.Errorf("#%d: %d-byte prefix: %v", n, i, err)
			}
		}
	}
}

func TestAuthSysDecode(t *testing.T) {
	body := func(nameLen, ngids int) []byte {
		b := xdr.AppendUint32(nil, 1)                               // stamp
		b = xdr.AppendOpaque(b, bytes.Repeat([]byte{'m'}, nameLen)) // machinename
		b = xdr.AppendUint32(b, 1000)                               // uid
		b = xdr.AppendUint32(b, 100)                                // gid
		b = xdr.AppendUint32(b, uint32(ngids))
		for i := range ngids {
			b = xdr.AppendUint32(b, uint32(i))
		}
		return b
	}
	for _, tc := range []struct {
		name string
		body []byte
		ok   bool
	}{
		{"16 gids", body(8, 16), true},
		{"17 gids", body(8, 17), false},
		{"name 255", body(255, 0), true},
		{"name 256", body(256, 0), false},
		{"name 255 and 16 gids, 340 bytes", body(255, 16), true},
		{"400 bytes", append(body(255, 16), make([]byte, 60)...), true},
		{"401 bytes", append(body(255, 16), make([]byte, 61)...), false},
		{"trailing bytes ignored (as libtirpc)", append(body(4, 1), 0, 0, 0, 0), true},
		{"gids count 0xffffffff", h("00000001 00000000 00000000 00000000 ffffffff"), false},
		{"gids truncated", h("00000001 00000000 00000000 00000000 00000002 00000001"), false},
		{"name length 0xffffffff", h("00000001 ffffffff"), false},
		{"name truncated", h("00000001 00000008 41414141"), false},
		{"empty", nil, false},
	} {
		var a AuthSysParams
		err := a.Decode(tc.body)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
		if err != nil && (!errors.Is(err, ErrBadAuthSys) || !strings.HasPrefix(err.Error(), "rpc: bad AUTH_SYS credential: ")) {
			t.Errorf("%s: error %q", tc.name, err)
		}
		hdr := CallHeader{Cred: OpaqueAuth{Flavor: AuthSys, Body: tc.body}}
		if got, want := CheckCred(&hdr), map[bool]AuthStat{true: AuthOK, false: AuthBadCred}[tc.ok]; got != want {
			t.Errorf("%s: CheckCred %v, want %v", tc.name, got, want)
		}
		if tc.ok {
			// Round trip (trailing bytes are dropped).
			var b AuthSysParams
			if err := b.Decode(a.AppendXDR(nil)); err != nil || b.UID != a.UID || b.NGIDs != a.NGIDs ||
				b.GIDs != a.GIDs || !bytes.Equal(b.MachineName, a.MachineName) {
				t.Errorf("%s: round trip %+v, %v", tc.name, b, err)
			}
		}
	}
}

func TestAuthSysAppendClamps(t *testing.T) {
	a := AuthSysParams{MachineName: bytes.Repeat([]byte{'x'}, 300), NGIDs: 40}
	var b AuthSysParams
	if err := b.Decode(a.AppendXDR(nil)); err != nil || len(b.MachineName) != MaxMachineName || b.NGIDs != MaxGIDs {
		t.Fatalf("%v %d %d", err, len(b.MachineName), b.NGIDs)
	}
	a.NGIDs = -1
	if err := b.Decode(a.AppendXDR(nil)); err != nil || b.NGIDs != 0 {
		t.Fatalf("%v %d", err, b.NGIDs)
	}
	oa := (&AuthSysParams{UID: 5}).OpaqueAuth()
	if oa.Flavor != AuthSys || len(oa.Body) != 20 {
		t.Fatalf("%+v", oa)
	}
}

func TestCheckCredFlavors(t *testing.T) {
	for _, tc := range []struct {
		f    AuthFlavor
		want AuthStat
	}{
		{AuthNone, AuthOK},
		{AuthShort, AuthRejectedCred},
		{AuthDH, AuthRejectedCred},
		{RPCSECGSS, AuthRejectedCred},
		{4, AuthRejectedCred},
		{99, AuthRejectedCred},
		{0xffffffff, AuthRejectedCred},
	} {
		hdr := CallHeader{Cred: OpaqueAuth{Flavor: tc.f}}
		if got := CheckCred(&hdr); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.f, got, tc.want)
		}
	}
}

func TestParseReplyHostile(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  []byte
		err  error
	}{
		{"empty", nil, ErrShortReply},
		{"8 bytes", h("00000001 00000001"), ErrShortReply},
		{"call", h("00000001 00000000 00000002"), ErrNotReply},
		{"wrong xid", h("00000002 00000001 00000000 00000000 00000000 00000000"), ErrXIDMismatch},
		{"reply_stat 2", h("00000001 00000001 00000002"), ErrBadReply},
		{"no verf", h("00000001 00000001 00000000"), ErrShortReply},
		{"verf 401", h("00000001 00000001 00000000 00000000 00000191"), ErrShortReply},
		{"no accept_stat", h("00000001 00000001 00000000 00000000 00000000"), ErrShortReply},
		{"mismatch without range", h("00000001 00000001 00000000 00000000 00000000 00000002 00000002"), ErrShortReply},
		{"denied, no reject_stat", h("00000001 00000001 00000001"), ErrShortReply},
		{"reject_stat 2", h("00000001 00000001 00000001 00000002"), ErrBadReply},
		{"auth error, no auth_stat", h("00000001 00000001 00000001 00000001"), ErrShortReply},
		{"rpc mismatch, no high", h("00000001 00000001 00000001 00000000 00000002"), ErrShortReply},
	} {
		res, err := ParseReply(tc.msg, 1)
		if err != tc.err || res != nil {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
	// A non-empty verifier is skipped.
	res, err := ParseReply(h(`00000001 00000001 00000000 // xid, REPLY, MSG_ACCEPTED
		00000001 00000005 01020304 05000000 // verf AUTH_SYS, 5 bytes + padding
		00000000 cafebabe // SUCCESS, results`), 1)
	if err != nil || !bytes.Equal(res, h("cafebabe")) {
		t.Errorf("verifier skip: %v %x", err, res)
	}
}

func TestEnumStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Call.String(), "CALL"}, {Reply.String(), "REPLY"}, {MsgType(2).String(), "2"},
		{MsgDenied.String(), "MSG_DENIED"}, {SystemErr.String(), "SYSTEM_ERR"},
		{AcceptStat(6).String(), "6"}, {AuthError.String(), "AUTH_ERROR"},
		{AuthFailed.String(), "AUTH_FAILED"}, {AuthTooWeak.String(), "AUTH_TOOWEAK"},
		{RPCSECGSS.String(), "RPCSEC_GSS"}, {AuthFlavor(4).String(), "4"},
		{AuthFlavor(0xffffffff).String(), "4294967295"}, {AuthDH.String(), "AUTH_DH"},
	} {
		if tc.got != tc.want {
			t.Errorf("%q, want %q", tc.got, tc.want)
		}
	}
	// The wire values (RFC 5531 §8.2, §9); a flattened or shifted enum
	// would put the wrong numbers on the wire.
	if ProgMismatch != 2 || GarbageArgs != 4 || AuthRejectedCred != 2 || AuthTooWeak != 5 ||
		AuthError != 1 || RPCMismatch != 0 || MsgDenied != 1 || RPCSECGSS != 6 || AuthShort != 2 {
		t.Fatal("enum values differ from RFC 5531")
	}
}

// Zero-allocation guards for the hot path: decoding a GETPORT call and
// encoding its reply into a reused buffer.
func TestHotPathAllocs(t *testing.T) {
	call := testvec.Get(t, 14).CallMsg() // v2 GETPORT over udp
	sys := testvec.Get(t, 13).CallMsg()  // AUTH_SYS
	var hdr CallHeader
	var d xdr.Decoder
	var sum uint32
	if n := testing.AllocsPerRun(100, func() {
		args, err := ParseCall(call, &hdr)
		if err != nil {
			t.Fatal(err)
		}
		d.Reset(args)
		sum += d.Uint32() + d.Uint32() + d.Uint32() + d.Uint32()
		if d.Err() != nil {
			t.Fatal(d.Err())
		}
	}); n != 0 {
		t.Errorf("decoding GETPORT: %v allocs", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := ParseCall(sys, &hdr); err != nil || CheckCred(&hdr) != AuthOK {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("ParseCall+CheckCred with AUTH_SYS: %v allocs", n)
	}
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() {
		buf = AppendAccepted(buf[:0], hdr.XID, Success)
		buf = xdr.AppendUint32(buf, 1000)
	}); n != 0 {
		t.Errorf("encoding GETPORT reply: %v allocs", n)
	}
	// Rejections are free too: they happen on hostile input.
	badBody := h("00000001 ffffffff") // machinename length 0xffffffff
	bad := h("00000009 00000000 00000002 000186a0 00000002 00000000 00000001 ffffffff")
	if n := testing.AllocsPerRun(100, func() {
		if _, err := ParseCall(bad, &hdr); err != ErrBadCred {
			t.Fatal(err)
		}
		var a AuthSysParams
		if a.Decode(badBody) == nil {
			t.Fatal("accepted")
		}
		buf = AppendAuthError(buf[:0], hdr.XID, AuthBadCred)
	}); n != 0 {
		t.Errorf("rejecting a bad credential: %v allocs", n)
	}
	_ = sum
}

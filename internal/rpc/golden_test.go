package rpc

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/testvec"
)

// Procedure numbers by the names the exchange titles use (RFC 1833).
var procByName = map[string]uint32{
	"NULL": 0, "SET": 1, "UNSET": 2, "GETPORT": 3, "GETADDR": 3, "DUMP": 4,
	"CALLIT": 5, "BCAST": 5, "GETTIME": 6, "UADDR2TADDR": 7, "TADDR2UADDR": 8,
	"GETVERSADDR": 9, "INDIRECT": 10, "GETADDRLIST": 11, "GETSTAT": 12,
}

// titleHeader derives prog, vers and proc from an exchange title alone
// ("v3 GETADDR over udp, ...", "v2 proc 99 over tcp",
// "prog 100003 (not served) vers 3 proc 0 over udp"), independently of
// the bytes.
func titleHeader(t *testing.T, title string) (prog, vers, proc uint32) {
	t.Helper()
	f := strings.Fields(title)
	num := func(s string) uint32 {
		v, err := strconv.ParseUint(s, 0, 32)
		if err != nil {
			t.Fatalf("title %q: bad number %q", title, s)
		}
		return uint32(v)
	}
	switch {
	case f[0] == "prog":
		prog = num(f[1])
		for i := 2; i+1 < len(f); i++ {
			switch f[i] {
			case "vers":
				vers = num(f[i+1])
			case "proc":
				proc = num(f[i+1])
			}
		}
		return prog, vers, proc
	case len(f[0]) == 2 && f[0][0] == 'v':
		vers = num(f[0][1:])
		if f[1] == "proc" {
			return 100000, vers, num(f[2])
		}
		p, ok := procByName[f[1]]
		if !ok {
			t.Fatalf("title %q: unknown procedure", title)
		}
		return 100000, vers, p
	}
	t.Fatalf("title %q: cannot derive the header", title)
	return
}

// Every reference call parses; its header matches what the title says.
func TestParseCallGolden(t *testing.T) {
	for _, x := range testvec.Load(t) {
		msg := x.CallMsg()
		var h CallHeader
		args, err := ParseCall(msg, &h)
		wantXID := uint32(0x74760000 + x.N)
		if h.XID != wantXID {
			t.Errorf("#%d: xid %#x, want %#x", x.N, h.XID, wantXID)
		}
		if x.N >= 164 && x.N <= 166 { // "rpcvers 3"
			if err != ErrRPCVersion || h.RPCVers != 3 {
				t.Errorf("#%d: got %v, rpcvers %d; want ErrRPCVersion, 3", x.N, err, h.RPCVers)
			}
			continue
		}
		if err != nil {
			t.Errorf("#%d %s: %v", x.N, x.Title, err)
			continue
		}
		prog, vers, proc := titleHeader(t, x.Title)
		if h.RPCVers != 2 || h.Prog != prog || h.Vers != vers || h.Proc != proc {
			t.Errorf("#%d %s: header %d/%d/%d/%d, want 2/%d/%d/%d",
				x.N, x.Title, h.RPCVers, h.Prog, h.Vers, h.Proc, prog, vers, proc)
		}
		if h.Verf.Flavor != AuthNone || len(h.Verf.Body) != 0 {
			t.Errorf("#%d: verifier %v/%d, README says every verifier is AUTH_NONE", x.N, h.Verf.Flavor, len(h.Verf.Body))
		}
		hdrLen := 40 + len(h.Cred.Body) // bodies here are word multiples
		if len(args) != len(msg)-hdrLen || (len(args) > 0 && &args[0] != &msg[hdrLen]) {
			t.Errorf("#%d: args do not alias the %d bytes after the header", x.N, len(msg)-hdrLen)
		}

		// Credentials: the reference answered AUTH_REJECTEDCRED to 161-163
		// and accepted every other call's credential.
		wantStat := AuthOK
		if x.N >= 161 && x.N <= 163 {
			wantStat = AuthRejectedCred
		}
		if got := CheckCred(&h); got != wantStat {
			t.Errorf("#%d: CheckCred %v, want %v", x.N, got, wantStat)
		}
		sys := strings.Contains(x.Title, "AUTH_SYS cred")
		if sys != (h.Cred.Flavor == AuthSys) {
			t.Errorf("#%d: cred flavor %v, title %q", x.N, h.Cred.Flavor, x.Title)
		}

		// Our encoder reproduces the reference prober's call byte for byte.
		var cred *OpaqueAuth
		if h.Cred.Flavor != AuthNone || len(h.Cred.Body) != 0 {
			cred = &h.Cred
		}
		prefix := []byte("pfx!")
		b := AppendCall(prefix, h.XID, h.Prog, h.Vers, h.Proc, cred)
		b = append(b, args...)
		if !bytes.Equal(b[4:], msg) || string(b[:4]) != "pfx!" {
			t.Errorf("#%d: AppendCall\n got %s\nwant %s", x.N, testvec.Hex(b[4:]), testvec.Hex(msg))
		}
	}
}

// The AUTH_SYS credentials in the vectors (README: stamp 0x5445535f,
// machinename "tvprobe", uid 0 / gid 0 / gids {0} or uid 1000 / gid 1000 /
// gids {1000, 24}) decode, and re-encode to the same bytes.
func TestAuthSysGolden(t *testing.T) {
	seen := 0
	for _, x := range testvec.Load(t) {
		var h CallHeader
		if _, err := ParseCall(x.CallMsg(), &h); err != nil || h.Cred.Flavor != AuthSys {
			continue
		}
		seen++
		var a AuthSysParams
		if err := a.Decode(h.Cred.Body); err != nil {
			t.Fatalf("#%d: %v", x.N, err)
		}
		if a.Stamp != 0x5445535f || string(a.MachineName) != "tvprobe" {
			t.Errorf("#%d: stamp %#x name %q", x.N, a.Stamp, a.MachineName)
		}
		switch {
		case strings.Contains(x.Title, "uid 1000"):
			if a.UID != 1000 || a.GID != 1000 || a.NGIDs != 2 || a.GIDs[0] != 1000 || a.GIDs[1] != 24 {
				t.Errorf("#%d: %+v", x.N, a)
			}
		case strings.Contains(x.Title, "uid 0"):
			if a.UID != 0 || a.GID != 0 || a.NGIDs != 1 || a.GIDs[0] != 0 {
				t.Errorf("#%d: %+v", x.N, a)
			}
		default:
			t.Errorf("#%d: title %q names no uid", x.N, x.Title)
		}
		if got := a.AppendXDR([]byte{9}); !bytes.Equal(got[1:], h.Cred.Body) {
			t.Errorf("#%d: AppendXDR\n got %s\nwant %s", x.N, testvec.Hex(got[1:]), testvec.Hex(h.Cred.Body))
		}
	}
	if seen != 6 {
		t.Errorf("found %d AUTH_SYS calls, want 6 (7, 13, 54, 104, 172, 176)", seen)
	}
}

// Expected reply kinds, from the README's tables (the reference's answers).
func wantReply(n int) (stat ReplyStat, as AcceptStat, au AuthStat) {
	switch n {
	case 138, 140, 144, 145:
		return MsgAccepted, ProgUnavail, 0
	case 139:
		return MsgAccepted, SystemErr, 0
	case 77, 135, 158, 159, 160:
		return MsgAccepted, GarbageArgs, 0
	case 146, 147, 148, 149, 150:
		return MsgAccepted, ProgMismatch, 0
	case 151, 152, 153, 154, 155, 156, 157:
		return MsgAccepted, ProcUnavail, 0
	case 27, 141, 167, 168, 169, 170, 171, 172:
		return MsgDenied, 0, AuthTooWeak
	case 161, 162, 163:
		return MsgDenied, 0, AuthRejectedCred
	}
	return MsgAccepted, Success, 0
}

// Every reference reply parses, and our builders reproduce its header byte
// for byte (after a non-empty prefix, to catch builders that ignore b).
func TestReplyHeaderGolden(t *testing.T) {
	kinds := map[string]int{}
	for _, x := range testvec.Load(t) {
		msg := x.ReplyMsg()
		if msg == nil {
			continue
		}
		xid := uint32(0x74760000 + x.N)
		res, err := ParseReply(msg, xid)
		stat, as, au := wantReply(x.N)
		prefix := []byte{0xde, 0xad}
		var hdr []byte
		var re *ReplyError
		switch {
		case err == nil:
			if stat != MsgAccepted || as != Success {
				t.Errorf("#%d: SUCCESS, want %v/%v/%v", x.N, stat, as, au)
			}
			hdr = AppendAccepted(prefix, xid, Success)
			if len(res) != len(msg)-24 || (len(res) > 0 && &res[0] != &msg[24]) {
				t.Errorf("#%d: results do not alias the bytes after the 24-byte header", x.N)
			}
		case errors.As(err, &re):
			if re.Stat != stat || re.AcceptStat != as || re.AuthStat != au {
				t.Errorf("#%d: %v, want %v/%v/%v", x.N, err, stat, as, au)
			}
			switch {
			case re.Stat == MsgAccepted && re.AcceptStat == ProgMismatch:
				if re.Low != 2 || re.High != 4 {
					t.Errorf("#%d: mismatch %d-%d, want 2-4", x.N, re.Low, re.High)
				}
				hdr = AppendProgMismatch(prefix, xid, re.Low, re.High)
			case re.Stat == MsgAccepted:
				hdr = AppendAccepted(prefix, xid, re.AcceptStat)
			case re.RejectStat == AuthError:
				hdr = AppendAuthError(prefix, xid, re.AuthStat)
			default:
				t.Errorf("#%d: unexpected %v", x.N, err)
				continue
			}
			// A failed call carries nothing after its header.
			if len(hdr)-len(prefix) != len(msg) {
				t.Errorf("#%d: reply is %d bytes, header %d", x.N, len(msg), len(hdr)-len(prefix))
			}
		default:
			t.Errorf("#%d: %v", x.N, err)
			continue
		}
		kinds[errString(err)]++
		if !bytes.Equal(hdr[:2], prefix) || !bytes.HasPrefix(msg, hdr[2:]) {
			t.Errorf("#%d: header\n got %s\nwant %s", x.N, testvec.Hex(hdr[2:]), testvec.Hex(msg[:min(len(msg), len(hdr)-2)]))
		}
	}
	t.Logf("reply kinds: %v", kinds)
}

func errString(err error) string {
	if err == nil {
		return "SUCCESS"
	}
	return err.Error()
}

// RFC-derived golden (NOT from the reference, which stays silent on a call
// with rpcvers ≠ 2, exchanges 164-166). RFC 5531 §9: rpc_msg REPLY,
// reply_body MSG_DENIED, rejected_reply RPC_MISMATCH with mismatch_info
// {low, high} of the RPC versions the server supports (2, 2).
func TestRPCMismatchRFCGolden(t *testing.T) {
	want := []byte{
		0x74, 0x76, 0x00, 0xa4, // xid 0x747600a4 (the call of exchange 164)
		0x00, 0x00, 0x00, 0x01, // msg_type REPLY (1)
		0x00, 0x00, 0x00, 0x01, // reply_stat MSG_DENIED (1)
		0x00, 0x00, 0x00, 0x00, // reject_stat RPC_MISMATCH (0)
		0x00, 0x00, 0x00, 0x02, // mismatch_info.low 2
		0x00, 0x00, 0x00, 0x02, // mismatch_info.high 2
	}
	var h CallHeader
	x := testvec.Get(t, 164)
	if _, err := ParseCall(x.CallMsg(), &h); err != ErrRPCVersion {
		t.Fatalf("exchange 164: %v, want ErrRPCVersion", err)
	}
	got := AppendRPCMismatch([]byte{1}, h.XID, RPCVersion, RPCVersion)
	if !bytes.Equal(got[1:], want) {
		t.Fatalf("RPC_MISMATCH\n got %s\nwant %s", testvec.Hex(got[1:]), testvec.Hex(want))
	}
	_, err := ParseReply(want, 0x747600a4)
	var re *ReplyError
	if !errors.As(err, &re) || re.Stat != MsgDenied || re.RejectStat != RPCMismatch || re.Low != 2 || re.High != 2 {
		t.Fatalf("ParseReply: %v", err)
	}
	if err.Error() != "rpc: call rejected: RPC_MISMATCH (low 2, high 2)" {
		t.Errorf("message %q", err)
	}
}

// RFC-derived goldens for reply kinds absent from the vectors (NOT from the
// reference): AUTH_BADCRED, which we send for a malformed AUTH_SYS body
// (DECISIONS.md "auth flavors"), and AUTH_BADVERF.
func TestAuthErrorRFCGolden(t *testing.T) {
	for _, tc := range []struct {
		stat AuthStat
		want []byte
	}{
		{AuthBadCred, []byte{
			0x00, 0x00, 0x00, 0x07, // xid 7
			0x00, 0x00, 0x00, 0x01, // msg_type REPLY (1)
			0x00, 0x00, 0x00, 0x01, // reply_stat MSG_DENIED (1)
			0x00, 0x00, 0x00, 0x01, // reject_stat AUTH_ERROR (1)
			0x00, 0x00, 0x00, 0x01, // auth_stat AUTH_BADCRED (1)
		}},
		{AuthBadVerf, []byte{
			0x00, 0x00, 0x00, 0x07, // xid 7
			0x00, 0x00, 0x00, 0x01, // msg_type REPLY (1)
			0x00, 0x00, 0x00, 0x01, // reply_stat MSG_DENIED (1)
			0x00, 0x00, 0x00, 0x01, // reject_stat AUTH_ERROR (1)
			0x00, 0x00, 0x00, 0x03, // auth_stat AUTH_BADVERF (3)
		}},
	} {
		if got := AppendAuthError(nil, 7, tc.stat); !bytes.Equal(got, tc.want) {
			t.Errorf("%v: got %s", tc.stat, testvec.Hex(got))
		}
	}
}

// A stream of every reference TCP call, back to back, reads back as the
// same messages (pipelining, as the reference allows).
func TestRecordReaderGolden(t *testing.T) {
	var stream []byte
	var want [][]byte
	for _, x := range testvec.Load(t) {
		if x.Stream() {
			stream = append(stream, x.Call...)
			want = append(want, x.CallMsg())
			if x.Reply != nil {
				stream = append(stream, x.Reply...)
				want = append(want, x.ReplyMsg())
			}
		}
	}
	rr := NewRecordReader(bytes.NewReader(stream), MaxRecord)
	for i, w := range want {
		got, err := rr.Next()
		if err != nil || !bytes.Equal(got, w) {
			t.Fatalf("record %d: %v\n got %s\nwant %s", i, err, testvec.Hex(got), testvec.Hex(w))
		}
	}
	if _, err := rr.Next(); err != io.EOF {
		t.Fatalf("after the last record: %v, want EOF", err)
	}
	if len(want) < 60 {
		t.Errorf("only %d records", len(want))
	}
}

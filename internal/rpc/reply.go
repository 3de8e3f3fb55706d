package rpc

import (
	"errors"
	"strconv"

	"github.com/openrpcbind/rpcbind/xdr"
)

// appendReplyHead appends xid, REPLY and reply_stat.
func appendReplyHead(b []byte, xid uint32, rs ReplyStat) []byte {
	b = xdr.AppendUint32(b, xid)
	b = xdr.AppendUint32(b, uint32(Reply))
	return xdr.AppendUint32(b, uint32(rs))
}

// AppendAccepted appends an accepted reply header up to and including
// accept_stat, with an AUTH_NONE verifier (the reference's only verifier).
// For Success the caller appends the results; for ProgMismatch use
// AppendProgMismatch.
func AppendAccepted(b []byte, xid uint32, stat AcceptStat) []byte {
	b = appendReplyHead(b, xid, MsgAccepted)
	b = xdr.AppendUint32(b, uint32(AuthNone)) // verf flavor
	b = xdr.AppendUint32(b, 0)                // verf length
	return xdr.AppendUint32(b, uint32(stat))
}

// AppendProgMismatch appends a complete PROG_MISMATCH reply with the
// supported version range.
func AppendProgMismatch(b []byte, xid, low, high uint32) []byte {
	b = AppendAccepted(b, xid, ProgMismatch)
	b = xdr.AppendUint32(b, low)
	return xdr.AppendUint32(b, high)
}

// AppendRPCMismatch appends a complete MSG_DENIED RPC_MISMATCH reply with
// the supported RPC version range (2, 2 for ONC RPC v2).
func AppendRPCMismatch(b []byte, xid, low, high uint32) []byte {
	b = appendReplyHead(b, xid, MsgDenied)
	b = xdr.AppendUint32(b, uint32(RPCMismatch))
	b = xdr.AppendUint32(b, low)
	return xdr.AppendUint32(b, high)
}

// AppendAuthError appends a complete MSG_DENIED AUTH_ERROR reply.
func AppendAuthError(b []byte, xid uint32, stat AuthStat) []byte {
	b = appendReplyHead(b, xid, MsgDenied)
	b = xdr.AppendUint32(b, uint32(AuthError))
	return xdr.AppendUint32(b, uint32(stat))
}

// Errors returned by ParseReply besides *ReplyError.
var (
	ErrShortReply  = errors.New("rpc: reply header truncated")
	ErrNotReply    = errors.New("rpc: message is not a reply")
	ErrXIDMismatch = errors.New("rpc: reply xid does not match the call")
	ErrBadReply    = errors.New("rpc: reply has an unknown reply_stat")
)

// ReplyError is a well-formed reply that carries no results: an accepted
// reply whose accept_stat is not SUCCESS, or a denied one.
type ReplyError struct {
	Stat       ReplyStat
	AcceptStat AcceptStat // when Stat is MsgAccepted
	RejectStat RejectStat // when Stat is MsgDenied
	AuthStat   AuthStat   // when RejectStat is AuthError
	Low, High  uint32     // for ProgMismatch and RPCMismatch
}

func (e *ReplyError) Error() string {
	if e.Stat == MsgAccepted {
		s := "rpc: call failed: " + e.AcceptStat.String()
		if e.AcceptStat == ProgMismatch {
			s += e.versions()
		}
		return s
	}
	switch e.RejectStat {
	case RPCMismatch:
		return "rpc: call rejected: RPC_MISMATCH" + e.versions()
	case AuthError:
		return "rpc: call rejected: AUTH_ERROR " + e.AuthStat.String()
	}
	return "rpc: call rejected: " + e.RejectStat.String()
}

func (e *ReplyError) versions() string {
	return " (low " + strconv.FormatUint(uint64(e.Low), 10) + ", high " + strconv.FormatUint(uint64(e.High), 10) + ")"
}

// ParseReply checks that msg is the reply to the call with xid and returns
// the results that follow a SUCCESS header, aliasing msg. A reply that is
// well formed but not SUCCESS returns a *ReplyError. The verifier is
// skipped (its body may be up to MaxAuthBytes). Bytes after a non-SUCCESS
// reply are ignored.
func ParseReply(msg []byte, xid uint32) (results []byte, err error) {
	var d xdr.Decoder
	d.Reset(msg)
	x := d.Uint32()
	mt := MsgType(d.Uint32())
	rs := ReplyStat(d.Uint32())
	if d.Err() != nil {
		return nil, ErrShortReply
	}
	if mt != Reply {
		return nil, ErrNotReply
	}
	if x != xid {
		return nil, ErrXIDMismatch
	}
	switch rs {
	case MsgAccepted:
		var verf OpaqueAuth
		if opaqueAuth(&d, &verf) != nil {
			return nil, ErrShortReply
		}
		as := AcceptStat(d.Uint32())
		if d.Err() != nil {
			return nil, ErrShortReply
		}
		switch as {
		case Success:
			return d.Rest(), nil
		case ProgMismatch:
			low, high := d.Uint32(), d.Uint32()
			if d.Err() != nil {
				return nil, ErrShortReply
			}
			return nil, &ReplyError{Stat: rs, AcceptStat: as, Low: low, High: high}
		}
		return nil, &ReplyError{Stat: rs, AcceptStat: as}
	case MsgDenied:
		e := &ReplyError{Stat: rs, RejectStat: RejectStat(d.Uint32())}
		switch e.RejectStat {
		case RPCMismatch:
			e.Low, e.High = d.Uint32(), d.Uint32()
		case AuthError:
			e.AuthStat = AuthStat(d.Uint32())
		default:
			return nil, ErrBadReply
		}
		if d.Err() != nil {
			return nil, ErrShortReply
		}
		return nil, e
	}
	return nil, ErrBadReply
}

// CheckServerReply reports whether what a server did with msg is well
// formed: silence appends nothing; a reply answers a message of at least
// an XID and parses as a reply to that XID (an error reply included). Fuzz
// targets of the dispatch and its decorators share it.
func CheckServerReply(msg, out []byte, sent bool) error {
	if !sent {
		if len(out) != 0 {
			return errors.New("rpc: silent but appended " + strconv.Itoa(len(out)) + " bytes")
		}
		return nil
	}
	if len(msg) < 4 {
		return errors.New("rpc: replied to a " + strconv.Itoa(len(msg)) + "-byte message")
	}
	xid := uint32(msg[0])<<24 | uint32(msg[1])<<16 | uint32(msg[2])<<8 | uint32(msg[3])
	if _, err := ParseReply(out, xid); err != nil {
		var re *ReplyError
		if !errors.As(err, &re) {
			return errors.Join(errors.New("rpc: malformed reply of "+strconv.Itoa(len(out))+" bytes"), err)
		}
	}
	return nil
}

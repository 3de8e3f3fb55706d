package rpc

import (
	"errors"

	"github.com/openrpcbind/rpcbind/xdr"
)

// Errors returned by ParseCall. The comment on each says what a server
// does with it.
var (
	// ErrShortHeader: the message ends inside the call header, or an
	// opaque_auth declares more bytes than remain. Stay silent: the header
	// cannot be trusted and any reply could be used to amplify.
	ErrShortHeader = errors.New("rpc: call header truncated")
	// ErrNotCall: msg_type is not CALL. Stay silent.
	ErrNotCall = errors.New("rpc: message is not a call")
	// ErrRPCVersion: rpcvers ≠ 2; h.XID and h.RPCVers are valid. Reply
	// RPC_MISMATCH low 2 high 2 (RFC 5531 §9; the reference is silent).
	ErrRPCVersion = errors.New("rpc: unsupported rpc version")
	// ErrBadCred: the credential body is longer than MaxAuthBytes; the XID,
	// program, version and procedure are valid. Reply AUTH_BADCRED.
	ErrBadCred = errors.New("rpc: credential body too long")
	// ErrBadVerf: the verifier body is longer than MaxAuthBytes; the header
	// and the credential are valid. Reply AUTH_BADVERF.
	ErrBadVerf = errors.New("rpc: verifier body too long")
)

// OpaqueAuth is opaque_auth (RFC 5531 §8.2). After ParseCall, Body aliases
// the message.
type OpaqueAuth struct {
	Flavor AuthFlavor
	Body   []byte
}

// CallHeader is the fixed part of a call message (RFC 5531 §9, rpc_msg with
// a call_body), up to and including the verifier.
type CallHeader struct {
	XID, RPCVers, Prog, Vers, Proc uint32
	Cred, Verf                     OpaqueAuth
}

// ParseCall decodes the call header at the start of msg into h and returns
// the procedure arguments that follow it, aliasing msg. It does not
// allocate. On error, h holds every field decoded before the failure; see
// the error values for which ones the caller may use.
func ParseCall(msg []byte, h *CallHeader) (args []byte, err error) {
	*h = CallHeader{}
	var d xdr.Decoder
	d.Reset(msg)
	h.XID = d.Uint32()
	mt := MsgType(d.Uint32())
	if d.Err() != nil {
		return nil, ErrShortHeader
	}
	if mt != Call {
		return nil, ErrNotCall
	}
	h.RPCVers = d.Uint32()
	if d.Err() != nil {
		return nil, ErrShortHeader
	}
	// The rest of the header is only defined for version 2, so check the
	// version before requiring it.
	if h.RPCVers != RPCVersion {
		return nil, ErrRPCVersion
	}
	h.Prog = d.Uint32()
	h.Vers = d.Uint32()
	h.Proc = d.Uint32()
	if err := opaqueAuth(&d, &h.Cred); err != nil {
		if err == errAuthTooLong {
			return nil, ErrBadCred
		}
		return nil, ErrShortHeader
	}
	if err := opaqueAuth(&d, &h.Verf); err != nil {
		if err == errAuthTooLong {
			return nil, ErrBadVerf
		}
		return nil, ErrShortHeader
	}
	return d.Rest(), nil
}

var errAuthTooLong = errors.New("rpc: opaque_auth body too long")

// opaqueAuth reads flavor and body<MaxAuthBytes> by hand rather than with
// d.Opaque so that the two failure kinds are told apart without allocating.
func opaqueAuth(d *xdr.Decoder, a *OpaqueAuth) error {
	a.Flavor = AuthFlavor(d.Uint32())
	n := d.Uint32()
	if d.Err() != nil {
		return ErrShortHeader
	}
	if n > MaxAuthBytes {
		return errAuthTooLong
	}
	if int(n)+xdr.Padding(int(n)) > d.Remaining() {
		return ErrShortHeader
	}
	a.Body = d.FixedOpaque(int(n))
	return nil
}

// AppendCall appends a call header for prog/vers/proc with the given
// credential (nil means AUTH_NONE) and an AUTH_NONE verifier. The caller
// appends the arguments.
func AppendCall(b []byte, xid, prog, vers, proc uint32, cred *OpaqueAuth) []byte {
	b = xdr.AppendUint32(b, xid)
	b = xdr.AppendUint32(b, uint32(Call))
	b = xdr.AppendUint32(b, RPCVersion)
	b = xdr.AppendUint32(b, prog)
	b = xdr.AppendUint32(b, vers)
	b = xdr.AppendUint32(b, proc)
	if cred == nil {
		b = xdr.AppendUint32(b, uint32(AuthNone))
		b = xdr.AppendUint32(b, 0)
	} else {
		b = xdr.AppendUint32(b, uint32(cred.Flavor))
		b = xdr.AppendOpaque(b, cred.Body)
	}
	b = xdr.AppendUint32(b, uint32(AuthNone)) // verf
	return xdr.AppendUint32(b, 0)
}

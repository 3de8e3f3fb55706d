package rpc

import (
	"errors"

	"github.com/openrpcbind/rpcbind/xdr"
)

// ErrBadAuthSys is wrapped by every AuthSysParams.Decode error.
var ErrBadAuthSys = errors.New("rpc: bad AUTH_SYS credential")

// authSysError names what was wrong; the values are preallocated so a
// rejected credential costs no allocation.
type authSysError struct{ what string }

func (e *authSysError) Error() string { return "rpc: bad AUTH_SYS credential: " + e.what }
func (e *authSysError) Unwrap() error { return ErrBadAuthSys }

var (
	errSysBody  = &authSysError{"body over 400 bytes"}
	errSysShort = &authSysError{"body truncated"}
	errSysName  = &authSysError{"machinename over 255 bytes"}
	errSysGIDs  = &authSysError{"more than 16 gids"}
)

// AuthSysParams is authsys_parms (RFC 5531 appendix A), the body of an
// AUTH_SYS credential. (The contract called this type AuthSys; that name is
// taken by the AuthFlavor constant.) After Decode, MachineName
// aliases the credential body; GIDs[:NGIDs] are the supplementary groups.
type AuthSysParams struct {
	Stamp       uint32
	MachineName []byte
	UID, GID    uint32
	NGIDs       int
	GIDs        [MaxGIDs]uint32
}

// Decode parses an AUTH_SYS credential body. Like libtirpc's
// _svcauth_unix it accepts bytes after the gids (they are ignored), and
// rejects a body over MaxAuthBytes, a machinename over MaxMachineName and
// more than MaxGIDs gids. It does not allocate.
func (a *AuthSysParams) Decode(body []byte) error {
	*a = AuthSysParams{}
	if len(body) > MaxAuthBytes {
		return errSysBody
	}
	var d xdr.Decoder
	d.Reset(body)
	a.Stamp = d.Uint32()
	n := d.Uint32()
	if d.Err() != nil {
		return errSysShort
	}
	if n > MaxMachineName {
		return errSysName
	}
	if int(n)+xdr.Padding(int(n)) > d.Remaining() {
		return errSysShort
	}
	a.MachineName = d.FixedOpaque(int(n))
	a.UID = d.Uint32()
	a.GID = d.Uint32()
	ng := d.Uint32()
	if d.Err() != nil {
		return errSysShort
	}
	if ng > MaxGIDs {
		return errSysGIDs
	}
	for i := range int(ng) {
		a.GIDs[i] = d.Uint32()
	}
	if d.Err() != nil {
		return errSysShort
	}
	a.NGIDs = int(ng)
	return nil
}

// AppendXDR appends the credential body. NGIDs is clamped to [0, MaxGIDs]
// and MachineName is truncated to MaxMachineName bytes, so the result is
// always a body Decode accepts.
func (a *AuthSysParams) AppendXDR(b []byte) []byte {
	b = xdr.AppendUint32(b, a.Stamp)
	name := a.MachineName
	if len(name) > MaxMachineName {
		name = name[:MaxMachineName]
	}
	b = xdr.AppendOpaque(b, name)
	b = xdr.AppendUint32(b, a.UID)
	b = xdr.AppendUint32(b, a.GID)
	ng := min(max(a.NGIDs, 0), MaxGIDs)
	b = xdr.AppendUint32(b, uint32(ng))
	for _, g := range a.GIDs[:ng] {
		b = xdr.AppendUint32(b, g)
	}
	return b
}

// OpaqueAuth returns a as an AUTH_SYS credential for AppendCall.
func (a *AuthSysParams) OpaqueAuth() OpaqueAuth {
	return OpaqueAuth{Flavor: AuthSys, Body: a.AppendXDR(nil)}
}

// CheckCred decides on the credential of a parsed call (DECISIONS.md "auth
// flavors"): AuthOK for AUTH_NONE and a well-formed AUTH_SYS; AuthBadCred
// for an AUTH_SYS body that does not decode (over 16 gids, over 400 bytes,
// machinename over 255, truncated); AuthRejectedCred for AUTH_SHORT,
// AUTH_DH, RPCSEC_GSS and unknown flavors. The verifier is not checked: the
// reference ignores it for AUTH_NONE and AUTH_SYS. It does not allocate.
func CheckCred(h *CallHeader) AuthStat {
	switch h.Cred.Flavor {
	case AuthNone:
		return AuthOK
	case AuthSys:
		var a AuthSysParams
		if a.Decode(h.Cred.Body) != nil {
			return AuthBadCred
		}
		return AuthOK
	default:
		return AuthRejectedCred
	}
}

package pmap

import (
	"errors"
	"fmt"

	"github.com/openrpcbind/rpcbind/xdr"
)

// Sentinel errors, wrapped with context by the decoders.
var (
	// ErrListTooLong: a list result holds more entries than its named limit.
	ErrListTooLong = errors.New("pmap: list longer than its limit")
	// ErrNetbufTooLong: a netbuf declares maxlen above MaxNetbuf.
	ErrNetbufTooLong = errors.New("pmap: netbuf maxlen above its limit")
	// ErrUaddr: a universal address that does not parse.
	ErrUaddr = errors.New("pmap: malformed universal address")
)

// MaxNetbuf caps netbuf.maxlen: libtirpc's xdr_netbuf refuses more than
// RPC_MAXDATASIZE, and the reference answers GARBAGE_ARGS ([EMP] exchange 77).
const MaxNetbuf = xdr.MaxDataSize

// MaxCallArgs caps the opaque arguments of CALLIT/INDIRECT. rpcbind decodes
// them with no limit (xdr_bytes(..., ~0)), but a call never exceeds the
// 9000-byte record and datagram cap, so nothing the reference accepts is
// refused; the decoder also checks the declared length against the bytes
// that remain before anything else.
const MaxCallArgs = xdr.MaxDataSize

// Mapping is the portmapper's pmap (RFC 1833 §3.1):
//
//	struct pmap { unsigned int pm_prog; pm_vers; pm_prot; pm_port; };
type Mapping struct {
	Prog, Vers, Prot, Port uint32
}

// AppendXDR appends the four words of m.
func (m *Mapping) AppendXDR(b []byte) []byte {
	b = xdr.AppendUint32(b, m.Prog)
	b = xdr.AppendUint32(b, m.Vers)
	b = xdr.AppendUint32(b, m.Prot)
	return xdr.AppendUint32(b, m.Port)
}

// DecodeXDR reads m from d. It does not allocate when d holds enough bytes.
func (m *Mapping) DecodeXDR(d *xdr.Decoder) error {
	m.decode(d)
	return wrap("pmap: decode pmap", d.Err())
}

func (m *Mapping) decode(d *xdr.Decoder) {
	m.Prog = d.Uint32()
	m.Vers = d.Uint32()
	m.Prot = d.Uint32()
	m.Port = d.Uint32()
}

// RPCB is the rpcbind v3/v4 argument rpcb (RFC 1833 §2.1):
//
//	struct rpcb { rpcprog_t r_prog; rpcvers_t r_vers;
//	              string r_netid<>; string r_addr<>; string r_owner<>; };
//
// After DecodeXDR the byte fields alias the decoded message.
type RPCB struct {
	Prog, Vers         uint32
	Netid, Addr, Owner []byte
}

// AppendXDR appends r.
func (r *RPCB) AppendXDR(b []byte) []byte {
	b = xdr.AppendUint32(b, r.Prog)
	b = xdr.AppendUint32(b, r.Vers)
	b = xdr.AppendOpaque(b, r.Netid) // a string and an opaque<> share a layout
	b = xdr.AppendOpaque(b, r.Addr)
	return xdr.AppendOpaque(b, r.Owner)
}

// DecodeXDR reads r from d, each string capped at MaxString. It does not
// allocate: Netid, Addr and Owner alias d's message.
func (r *RPCB) DecodeXDR(d *xdr.Decoder) error {
	r.decode(d)
	return wrap("pmap: decode rpcb", d.Err())
}

func (r *RPCB) decode(d *xdr.Decoder) {
	r.Prog = d.Uint32()
	r.Vers = d.Uint32()
	r.Netid = d.StringBytes(MaxString)
	r.Addr = d.StringBytes(MaxString)
	r.Owner = d.StringBytes(MaxString)
}

// Entry returns a copy of r with string fields.
func (r *RPCB) Entry() RPCBEntry {
	return RPCBEntry{Prog: r.Prog, Vers: r.Vers, Netid: string(r.Netid), Addr: string(r.Addr), Owner: string(r.Owner)}
}

// AppendRPCB appends an rpcb built from its fields.
func AppendRPCB(b []byte, prog, vers uint32, netid, addr, owner string) []byte {
	b = xdr.AppendUint32(b, prog)
	b = xdr.AppendUint32(b, vers)
	b = xdr.AppendString(b, netid)
	b = xdr.AppendString(b, addr)
	return xdr.AppendString(b, owner)
}

// RPCBEntry is an rpcb with string fields: one element of a v3/v4 DUMP
// (rpcblist) as a client sees it.
type RPCBEntry struct {
	Prog, Vers         uint32
	Netid, Addr, Owner string
}

// AppendXDR appends e as an rpcb.
func (e *RPCBEntry) AppendXDR(b []byte) []byte {
	return AppendRPCB(b, e.Prog, e.Vers, e.Netid, e.Addr, e.Owner)
}

// DecodeXDR reads an rpcb into e, copying its strings.
func (e *RPCBEntry) DecodeXDR(d *xdr.Decoder) error {
	e.decode(d)
	return wrap("pmap: decode rpcb", d.Err())
}

func (e *RPCBEntry) decode(d *xdr.Decoder) {
	e.Prog = d.Uint32()
	e.Vers = d.Uint32()
	e.Netid = d.String(MaxString)
	e.Addr = d.String(MaxString)
	e.Owner = d.String(MaxString)
}

// CallArgs is the argument of CALLIT, BCAST and INDIRECT: the v2 call_args
// (RFC 1833 §3.2) and rpcb_rmtcallargs (§2.1) share this layout:
//
//	struct { unsigned int prog; vers; proc; opaque args<>; };
//
// After DecodeXDR, Args aliases the decoded message.
type CallArgs struct {
	Prog, Vers, Proc uint32
	Args             []byte
}

// AppendXDR appends a.
func (a *CallArgs) AppendXDR(b []byte) []byte {
	b = xdr.AppendUint32(b, a.Prog)
	b = xdr.AppendUint32(b, a.Vers)
	b = xdr.AppendUint32(b, a.Proc)
	return xdr.AppendOpaque(b, a.Args)
}

// DecodeXDR reads a from d, the arguments capped at MaxCallArgs and by the
// bytes that remain. It does not allocate.
func (a *CallArgs) DecodeXDR(d *xdr.Decoder) error {
	a.Prog = d.Uint32()
	a.Vers = d.Uint32()
	a.Proc = d.Uint32()
	a.Args = d.Opaque(MaxCallArgs)
	return wrap("pmap: decode call args", d.Err())
}

// CallResult is the v2 CALLIT result call_result (RFC 1833 §3.2):
// the port of the target and its raw results.
type CallResult struct {
	Port uint32
	Res  []byte // aliases the decoded message
}

// AppendCallResult appends a v2 call_result: port, then res as opaque<>.
// res is the forwarded reply's result bytes, after its accept_stat.
func AppendCallResult(b []byte, port uint32, res []byte) []byte {
	b = xdr.AppendUint32(b, port)
	return xdr.AppendOpaque(b, res)
}

// DecodeXDR reads a call_result, for clients. max caps the results.
func (r *CallResult) DecodeXDR(d *xdr.Decoder, max int) error {
	r.Port = d.Uint32()
	r.Res = d.Opaque(max)
	return wrap("pmap: decode call result", d.Err())
}

// RmtCallRes is the v3/v4 CALLIT, BCAST and INDIRECT result
// rpcb_rmtcallres (RFC 1833 §2.1): the merged uaddr of the target and its
// raw results.
type RmtCallRes struct {
	Addr    string
	Results []byte // aliases the decoded message
}

// AppendRmtCallRes appends an rpcb_rmtcallres: addr as a string, then res
// as opaque<>.
func AppendRmtCallRes(b []byte, addr string, res []byte) []byte {
	b = xdr.AppendString(b, addr)
	return xdr.AppendOpaque(b, res)
}

// DecodeXDR reads an rpcb_rmtcallres, for clients; max caps the results.
func (r *RmtCallRes) DecodeXDR(d *xdr.Decoder, max int) error {
	r.Addr = d.String(MaxString)
	r.Results = d.Opaque(max)
	return wrap("pmap: decode rmtcallres", d.Err())
}

// Netbuf is a transport address as UADDR2TADDR returns it and TADDR2UADDR
// takes it (RFC 1833 §2.1):
//
//	struct netbuf { unsigned int maxlen; opaque buf<maxlen>; };
//
// After DecodeXDR, Buf aliases the decoded message.
type Netbuf struct {
	MaxLen uint32
	Buf    []byte
}

// AppendXDR appends n.
func (n *Netbuf) AppendXDR(b []byte) []byte {
	b = xdr.AppendUint32(b, n.MaxLen)
	return xdr.AppendOpaque(b, n.Buf)
}

// DecodeXDR reads n as libtirpc's xdr_netbuf does: maxlen above MaxNetbuf
// is an error, and so is a buffer longer than maxlen. It does not allocate
// on success. On error d is left failed (sticky), so a later d.Finish
// reports it too.
func (n *Netbuf) DecodeXDR(d *xdr.Decoder) error {
	n.MaxLen = d.Uint32()
	if d.Err() == nil && n.MaxLen > MaxNetbuf {
		// Poison d so that the error sticks: a negative maximum makes the
		// length word fail with xdr.ErrTooLong.
		d.Opaque(-1)
		n.Buf = nil
		return fmt.Errorf("pmap: decode netbuf: maxlen %d above %d: %w (%w)",
			n.MaxLen, MaxNetbuf, ErrNetbufTooLong, d.Err())
	}
	n.Buf = d.Opaque(int(n.MaxLen))
	return wrap("pmap: decode netbuf", d.Err())
}

// Entry is rpcb_entry, one element of a GETADDRLIST result (RFC 1833 §2.1):
//
//	struct rpcb_entry { string r_maddr<>; string r_nc_netid<>;
//	    unsigned int r_nc_semantics; string r_nc_protofmly<>; string r_nc_proto<>; };
type Entry struct {
	Maddr, Netid string
	Semantics    uint32 // NCTPIClts, NCTPICots, NCTPICotsOrd
	Protofmly    string // "inet", "inet6", "loopback"
	Proto        string // "udp", "tcp", "-"
}

// AppendXDR appends e.
func (e *Entry) AppendXDR(b []byte) []byte {
	b = xdr.AppendString(b, e.Maddr)
	b = xdr.AppendString(b, e.Netid)
	b = xdr.AppendUint32(b, e.Semantics)
	b = xdr.AppendString(b, e.Protofmly)
	return xdr.AppendString(b, e.Proto)
}

// DecodeXDR reads e, copying its strings.
func (e *Entry) DecodeXDR(d *xdr.Decoder) error {
	e.decode(d)
	return wrap("pmap: decode rpcb_entry", d.Err())
}

func (e *Entry) decode(d *xdr.Decoder) {
	e.Maddr = d.String(MaxString)
	e.Netid = d.String(MaxString)
	e.Semantics = d.Uint32()
	e.Protofmly = d.String(MaxString)
	e.Proto = d.String(MaxString)
}

// wrap prefixes err with what, allocating only on failure.
func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}

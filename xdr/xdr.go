package xdr

import (
	"errors"
	"strconv"
)

// be32 and be64 read big-endian words. They are written out rather than
// taken from encoding/binary, which would pull reflect into the codec's
// dependencies.
func be32(b []byte) uint32 {
	_ = b[3] // one bounds check
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func be64(b []byte) uint64 { return uint64(be32(b))<<32 | uint64(be32(b[4:])) }

// MaxDataSize is RPC_MAXDATASIZE (libtirpc rpc/rpc_com.h), the cap libtirpc
// puts on every string and netbuf since the CVE-2017-8779 ("rpcbomb") fix.
const MaxDataSize = 9000

// Sentinel errors; a *Error wraps one of them with the offset it happened at.
var (
	ErrShort    = errors.New("xdr: message too short")
	ErrTooLong  = errors.New("xdr: length exceeds its limit")
	ErrTrailing = errors.New("xdr: trailing bytes after message")
)

// Error says what failed and where in the message.
type Error struct {
	Op     string // the item being decoded, e.g. "uint32", "opaque"
	Offset int    // byte offset of the item in the message
	Len    uint32 // declared length for variable-length items, else 0
	Err    error  // one of the sentinels
}

func (e *Error) Error() string {
	s := e.Err.Error() + ": " + e.Op + " at offset " + strconv.Itoa(e.Offset)
	if e.Len != 0 {
		s += " (declared length " + strconv.FormatUint(uint64(e.Len), 10) + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Padding returns the number of zero bytes that follow n data bytes so that
// the next item starts on a 4-byte boundary (RFC 4506 §3).
func Padding(n int) int { return (4 - n&3) & 3 }

// Decoder reads XDR items from one message. The zero value decodes an empty
// message; Reset points it at another. After the first error every read
// returns a zero value and Err reports that first error.
type Decoder struct {
	buf []byte
	off int
	err error
}

// NewDecoder returns a Decoder over b.
func NewDecoder(b []byte) *Decoder { return &Decoder{buf: b} }

// Reset makes d decode b from its start, clearing any error.
func (d *Decoder) Reset(b []byte) { *d = Decoder{buf: b} }

// Err returns the first error met, or nil.
func (d *Decoder) Err() error { return d.err }

// Finish returns the first error met or, if there was none, ErrTrailing when
// bytes remain after the last item read.
func (d *Decoder) Finish() error {
	if d.err == nil && d.off != len(d.buf) {
		d.err = &Error{Op: "end of message", Offset: d.off, Err: ErrTrailing}
	}
	return d.err
}

// Offset is the number of bytes consumed so far.
func (d *Decoder) Offset() int { return d.off }

// Remaining is the number of bytes not yet consumed.
func (d *Decoder) Remaining() int { return len(d.buf) - d.off }

// Rest returns the bytes not yet consumed, without consuming them.
func (d *Decoder) Rest() []byte { return d.buf[d.off:] }

func (d *Decoder) fail(op string, n uint32, err error) {
	if d.err == nil {
		d.err = &Error{Op: op, Offset: d.off, Len: n, Err: err}
	}
}

// Uint32 reads an unsigned integer (RFC 4506 §4.2).
func (d *Decoder) Uint32() uint32 {
	if d.err != nil {
		return 0
	}
	if len(d.buf)-d.off < 4 {
		d.fail("uint32", 0, ErrShort)
		return 0
	}
	v := be32(d.buf[d.off:])
	d.off += 4
	return v
}

// Int32 reads a signed integer (RFC 4506 §4.1).
func (d *Decoder) Int32() int32 { return int32(d.Uint32()) }

// Uint64 reads an unsigned hyper integer (RFC 4506 §4.5).
func (d *Decoder) Uint64() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.buf)-d.off < 8 {
		d.fail("uint64", 0, ErrShort)
		return 0
	}
	v := be64(d.buf[d.off:])
	d.off += 8
	return v
}

// Bool reads a boolean (RFC 4506 §4.4); any non-zero word is TRUE, as in
// libtirpc's xdr_bool.
func (d *Decoder) Bool() bool { return d.Uint32() != 0 }

// More reads the "value follows" word of an optional-data linked list
// (RFC 4506 §4.19), as xdr_pointer does.
func (d *Decoder) More() bool { return d.Uint32() != 0 }

// FixedOpaque reads n bytes plus padding (RFC 4506 §4.9). The result aliases
// the message.
func (d *Decoder) FixedOpaque(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.buf)-d.off || n+Padding(n) > len(d.buf)-d.off {
		d.fail("fixed opaque", uint32(n), ErrShort)
		return nil
	}
	p := d.buf[d.off : d.off+n : d.off+n]
	d.off += n + Padding(n)
	return p
}

// Opaque reads variable-length opaque data of at most max bytes
// (RFC 4506 §4.10). The declared length is checked against max and against
// the bytes that remain before anything else happens. The result aliases the
// message.
func (d *Decoder) Opaque(max int) []byte { return d.variable("opaque", max) }

// StringBytes reads a string of at most max bytes (RFC 4506 §4.11) and
// returns it as a slice aliasing the message, without allocating.
func (d *Decoder) StringBytes(max int) []byte { return d.variable("string", max) }

// String reads a string of at most max bytes and copies it.
func (d *Decoder) String(max int) string { return string(d.variable("string", max)) }

func (d *Decoder) variable(op string, max int) []byte {
	if d.err != nil {
		return nil
	}
	start := d.off
	n := d.Uint32()
	if d.err != nil {
		return nil
	}
	if max < 0 || uint64(n) > uint64(max) {
		d.off = start
		d.fail(op, n, ErrTooLong)
		return nil
	}
	// Compare in uint64: on 32-bit platforms int(n)+padding can overflow
	// when max is near math.MaxInt.
	rem := uint64(len(d.buf) - d.off)
	if uint64(n)+uint64(Padding(int(n&3))) > rem {
		d.off = start
		d.fail(op, n, ErrShort)
		return nil
	}
	p := d.buf[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n) + Padding(int(n))
	return p
}

// AppendUint32 appends v (RFC 4506 §4.2).
func AppendUint32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// AppendInt32 appends v (RFC 4506 §4.1).
func AppendInt32(b []byte, v int32) []byte { return AppendUint32(b, uint32(v)) }

// AppendUint64 appends v (RFC 4506 §4.5).
func AppendUint64(b []byte, v uint64) []byte {
	return AppendUint32(AppendUint32(b, uint32(v>>32)), uint32(v))
}

// AppendBool appends 1 for true and 0 for false (RFC 4506 §4.4).
func AppendBool(b []byte, v bool) []byte {
	if v {
		return AppendUint32(b, 1)
	}
	return AppendUint32(b, 0)
}

var zeros [4]byte

// AppendFixedOpaque appends p and its padding (RFC 4506 §4.9).
func AppendFixedOpaque(b, p []byte) []byte {
	b = append(b, p...)
	return append(b, zeros[:Padding(len(p))]...)
}

// AppendOpaque appends the length of p, p and its padding (RFC 4506 §4.10).
func AppendOpaque(b, p []byte) []byte {
	return AppendFixedOpaque(AppendUint32(b, uint32(len(p))), p)
}

// AppendString appends s as an XDR string (RFC 4506 §4.11).
func AppendString(b []byte, s string) []byte {
	b = AppendUint32(b, uint32(len(s)))
	b = append(b, s...)
	return append(b, zeros[:Padding(len(s))]...)
}

// PutUint32 overwrites the four bytes at b[0:4] with v; used to patch a
// length or record mark reserved earlier.
func PutUint32(b []byte, v uint32) {
	_ = b[3]
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

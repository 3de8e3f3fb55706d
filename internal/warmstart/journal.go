package warmstart

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/openrpcbind/rpcbind/xdr"
)

const (
	journalMagic = "RPCBJNL1"
	headerLen    = 24 // magic, kind, length, CRC, header CRC
	frameLen     = 8  // payload length, CRC
	// MaxRecord caps a record's payload: op, prog, vers and three strings
	// of at most MaxString bytes with their length words.
	MaxRecord = 12 + 3*(4+MaxString)
)

// Base kinds: which C-format file a journal applies to.
const (
	baseNone uint32 = 0
	baseRPCB uint32 = 1
	basePmap uint32 = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Journal reading errors. A torn tail is the normal result of a kill -9
// during a write; the others mean damage.
var (
	ErrJournalHeader = errors.New("warmstart: journal header invalid")
	ErrTornRecord    = errors.New("warmstart: journal ends inside a record")
	ErrBadCRC        = errors.New("warmstart: journal record CRC mismatch")
	ErrBadRecord     = errors.New("warmstart: journal record undecodable")
)

// base identifies the bytes a journal's records apply to.
type base struct {
	kind, n, crc uint32
}

func baseOf(kind uint32, b []byte) base {
	if kind == baseNone {
		return base{}
	}
	return base{kind: kind, n: uint32(len(b)), crc: crc32.Checksum(b, castagnoli)}
}

func appendHeader(b []byte, bs base) []byte {
	start := len(b)
	b = append(b, journalMagic...)
	b = xdr.AppendUint32(b, bs.kind)
	b = xdr.AppendUint32(b, bs.n)
	b = xdr.AppendUint32(b, bs.crc)
	return xdr.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

func parseHeader(b []byte) (base, error) {
	if len(b) < headerLen || string(b[:8]) != journalMagic ||
		binary.BigEndian.Uint32(b[20:]) != crc32.Checksum(b[:20], castagnoli) {
		return base{}, ErrJournalHeader
	}
	return base{
		kind: binary.BigEndian.Uint32(b[8:]),
		n:    binary.BigEndian.Uint32(b[12:]),
		crc:  binary.BigEndian.Uint32(b[16:]),
	}, nil
}

// appendRecord appends one framed record.
func appendRecord(b []byte, op Op, e *Entry) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0) // length and CRC, patched below
	b = xdr.AppendUint32(b, uint32(op))
	b = appendRPCB(b, e)
	xdr.PutUint32(b[start:], uint32(len(b)-start-frameLen))
	crc := crc32.Update(0, castagnoli, b[start:start+4])
	crc = crc32.Update(crc, castagnoli, b[start+frameLen:])
	xdr.PutUint32(b[start+4:], crc)
	return b
}

// scanRecords calls fn for each valid record in b from offset off (the end
// of the header) and returns the offset where the valid records end. It
// stops at the first torn, corrupt or undecodable record and says why; a
// clean end returns a nil error.
func scanRecords(b []byte, off int, fn func(Op, *Entry)) (int, error) {
	var e Entry
	var d xdr.Decoder
	for off < len(b) {
		rest := b[off:]
		if len(rest) < frameLen {
			return off, ErrTornRecord
		}
		n := binary.BigEndian.Uint32(rest)
		if n < 12 || n > MaxRecord || n%4 != 0 {
			// A length no writer produces: damage, not a torn write.
			return off, fmt.Errorf("%w: length %d at offset %d", ErrBadRecord, n, off)
		}
		if uint64(len(rest)-frameLen) < uint64(n) {
			return off, ErrTornRecord
		}
		payload := rest[frameLen : frameLen+int(n)]
		crc := crc32.Update(0, castagnoli, rest[:4])
		crc = crc32.Update(crc, castagnoli, payload)
		if crc != binary.BigEndian.Uint32(rest[4:]) {
			return off, fmt.Errorf("%w at offset %d", ErrBadCRC, off)
		}
		d.Reset(payload)
		w := d.Uint32() // compared as u32: Op is narrower
		decodeRPCB(&d, &e)
		if err := d.Finish(); err != nil || (w != uint32(OpSet) && w != uint32(OpUnset)) {
			return off, fmt.Errorf("%w at offset %d", ErrBadRecord, off)
		}
		fn(Op(w), &e)
		off += frameLen + int(n)
	}
	return off, nil
}

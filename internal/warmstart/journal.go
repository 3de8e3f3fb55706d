package warmstart

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"

	"golang.org/x/sys/unix"

	"github.com/openrpcbind/rpcbind/xdr"
)

const (
	journalMagic = "RPCBJNL2"
	// journalMagicV1 is the header of journals written before the base's
	// identity was recorded: they cannot prove their base, so they are
	// never replayed (their records are counted in the warning).
	journalMagicV1 = "RPCBJNL1"
	headerLenV1    = 24
	// headerLen: magic, kind, length, CRC, st_dev, st_ino, ctime seconds,
	// ctime nanoseconds, header CRC.
	headerLen = 52
	frameLen  = 8 // payload length, CRC
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
	// errJournalV1 is a header of the first layout (journalMagicV1).
	errJournalV1 = errors.New("warmstart: journal of the first layout, without its base's identity")
)

// fileID identifies one write of a base file, as fstat saw it after the
// write was durable (after the rename, which changes the ctime) or when the
// file was read. Length and CRC cannot tell that another daemon rewrote a
// file with the same bytes; this can: the C rpcbind unlinks what it read
// with -w and creates a new file at exit (another inode), and without -w
// truncates the same inode (another ctime). The ctime is kept to the
// nanosecond; no writer can produce it again except by rewriting the file.
type fileID struct {
	dev, ino  uint64
	ctimeSec  uint64
	ctimeNsec uint32
}

func statID(f *os.File) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fileID{}, fmt.Errorf("warmstart: fstat %s: %w", f.Name(), err)
	}
	return fileID{dev: st.Dev, ino: st.Ino, ctimeSec: uint64(st.Ctim.Sec), ctimeNsec: uint32(st.Ctim.Nsec)}, nil
}

// base identifies the bytes a journal's records apply to, and the write
// that left them.
type base struct {
	kind, n, crc uint32
	id           fileID
}

func baseOf(kind uint32, b []byte, id fileID) base {
	if kind == baseNone {
		return base{}
	}
	return base{kind: kind, n: uint32(len(b)), crc: crc32.Checksum(b, castagnoli), id: id}
}

// why says how a journal's base differs from the files found.
func (want base) why(got base) string {
	name := func(k uint32) string {
		switch k {
		case baseRPCB:
			return RPCBFile
		case basePmap:
			return PmapFile
		}
		return "no state file"
	}
	switch {
	case want.kind != got.kind:
		return "written against " + name(want.kind) + ", found " + name(got.kind)
	case want.n != got.n || want.crc != got.crc:
		return name(want.kind) + " holds other registrations than it was written against"
	default:
		return fmt.Sprintf("%s was rewritten by another run, with the same bytes (inode %d ctime %d.%09d, written against inode %d ctime %d.%09d)",
			name(want.kind), got.id.ino, got.id.ctimeSec, got.id.ctimeNsec, want.id.ino, want.id.ctimeSec, want.id.ctimeNsec)
	}
}

func appendHeader(b []byte, bs base) []byte {
	start := len(b)
	b = append(b, journalMagic...)
	b = xdr.AppendUint32(b, bs.kind)
	b = xdr.AppendUint32(b, bs.n)
	b = xdr.AppendUint32(b, bs.crc)
	b = binary.BigEndian.AppendUint64(b, bs.id.dev)
	b = binary.BigEndian.AppendUint64(b, bs.id.ino)
	b = binary.BigEndian.AppendUint64(b, bs.id.ctimeSec)
	b = xdr.AppendUint32(b, bs.id.ctimeNsec)
	return xdr.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// parseHeader reads a journal header. A valid header of the first layout
// gives errJournalV1.
func parseHeader(b []byte) (base, error) {
	if len(b) >= headerLenV1 && string(b[:8]) == journalMagicV1 &&
		binary.BigEndian.Uint32(b[20:]) == crc32.Checksum(b[:20], castagnoli) {
		return base{}, errJournalV1
	}
	if len(b) < headerLen || string(b[:8]) != journalMagic ||
		binary.BigEndian.Uint32(b[48:]) != crc32.Checksum(b[:48], castagnoli) {
		return base{}, ErrJournalHeader
	}
	return base{
		kind: binary.BigEndian.Uint32(b[8:]),
		n:    binary.BigEndian.Uint32(b[12:]),
		crc:  binary.BigEndian.Uint32(b[16:]),
		id: fileID{
			dev:       binary.BigEndian.Uint64(b[20:]),
			ino:       binary.BigEndian.Uint64(b[28:]),
			ctimeSec:  binary.BigEndian.Uint64(b[36:]),
			ctimeNsec: binary.BigEndian.Uint32(b[44:]),
		},
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

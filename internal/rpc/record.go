package rpc

import (
	"encoding/binary"
	"errors"
	"io"

	"github.com/openrpcbind/rpcbind/xdr"
)

// Record marking (RFC 5531 §11): on stream transports each record is sent
// as one or more fragments, each preceded by a 4-byte mark whose top bit
// flags the last fragment and whose low 31 bits are the fragment length.

const (
	lastFragment = 1 << 31
	fragmentLen  = 1<<31 - 1

	// MaxFragments caps the fragments of one record. Zero-length
	// fragments add nothing to the running total, so without this a peer
	// could keep a record open forever at four bytes a step. Real clients
	// send one fragment; the reference cannot reassemble even two.
	MaxFragments = 1024

	// minGrow is the smallest step by which the record buffer grows; growth
	// is otherwise driven by bytes that have arrived, never by the length a
	// fragment declares.
	minGrow = 512
)

// Errors returned by RecordReader.Next. After any error other than io.EOF
// at a record boundary the stream position is lost: close the connection.
var (
	ErrRecordTooLarge = errors.New("rpc: record exceeds the size limit")
	ErrEmptyRecord    = errors.New("rpc: record is empty")
	ErrTooManyFrags   = errors.New("rpc: record has too many fragments")
)

// RecordReader reads record-marked messages from a stream.
type RecordReader struct {
	r    io.Reader
	max  int
	buf  []byte
	mark [4]byte // a field, not a local: passed to an io.Reader it would escape
	err  error
}

// NewRecordReader returns a reader of records of at most limit bytes in
// total (use MaxRecord for the reference's limit). limit < 1 is treated
// as 1.
func NewRecordReader(r io.Reader, limit int) *RecordReader {
	return &RecordReader{r: r, max: max(limit, 1)}
}

// Reset makes rr read from r, keeping its buffer.
func (rr *RecordReader) Reset(r io.Reader) { rr.r, rr.err = r, nil }

// Next returns the next complete record, its fragments reassembled. The
// slice is valid until the next call. It returns io.EOF only when the
// stream ends at a record boundary, io.ErrUnexpectedEOF when it ends inside
// one, ErrRecordTooLarge as soon as the running total of fragment lengths
// would pass the limit (before reading the fragment), ErrTooManyFrags, and
// ErrEmptyRecord for a record whose fragments are all empty (a zero-length
// last fragment ending a non-empty record is legal). Errors are sticky.
func (rr *RecordReader) Next() ([]byte, error) {
	if rr.err != nil {
		return nil, rr.err
	}
	rec, err := rr.next()
	if err != nil {
		rr.err = err
		return nil, err
	}
	return rec, nil
}

func (rr *RecordReader) next() ([]byte, error) {
	rr.buf = rr.buf[:0]
	mark := rr.mark[:]
	for frags := 0; ; frags++ {
		if frags == MaxFragments {
			return nil, ErrTooManyFrags
		}
		if n, err := io.ReadFull(rr.r, mark); err != nil {
			if err == io.EOF && frags == 0 && n == 0 {
				return nil, io.EOF
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		m := binary.BigEndian.Uint32(mark)
		n := int(m & fragmentLen)
		if n > rr.max-len(rr.buf) {
			return nil, ErrRecordTooLarge
		}
		if err := rr.read(n); err != nil {
			return nil, err
		}
		if m&lastFragment != 0 {
			if len(rr.buf) == 0 {
				return nil, ErrEmptyRecord
			}
			return rr.buf, nil
		}
	}
}

// read appends exactly n bytes from the stream to rr.buf, growing the
// buffer only as bytes arrive.
func (rr *RecordReader) read(n int) error {
	for n > 0 {
		if len(rr.buf) == cap(rr.buf) {
			// At most double what is held (at least minGrow), and never
			// past what the fragment still owes.
			grow := min(max(cap(rr.buf), minGrow), n)
			nb := make([]byte, len(rr.buf), len(rr.buf)+grow)
			copy(nb, rr.buf)
			rr.buf = nb
		}
		free := rr.buf[len(rr.buf):min(cap(rr.buf), len(rr.buf)+n)]
		k, err := rr.r.Read(free)
		rr.buf = rr.buf[:len(rr.buf)+k]
		n -= k
		if err != nil && n > 0 {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// BeginRecord appends a placeholder record mark to b and returns the
// extended slice and the index of the mark; append the message, then call
// EndRecord.
func BeginRecord(b []byte) ([]byte, int) {
	return append(b, 0, 0, 0, 0), len(b)
}

// EndRecord patches the mark at start so that everything after it is one
// record sent as a single last fragment. It panics if the message is longer
// than a fragment can describe (2^31-1 bytes).
func EndRecord(b []byte, start int) {
	n := len(b) - start - 4
	if n < 0 || n > fragmentLen {
		panic("rpc: EndRecord: bad record length")
	}
	xdr.PutUint32(b[start:], lastFragment|uint32(n))
}

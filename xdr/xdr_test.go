package xdr_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"

	refxdr "github.com/davecgh/go-xdr/xdr2"

	"github.com/openrpcbind/rpcbind/xdr"
)

// h decodes annotated hex: words separated by spaces, "//" comments.
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

// RFC 4506 examples, encoded after a non-empty prefix.
func TestEncodeGolden(t *testing.T) {
	pre := []byte{0xee}
	for _, tc := range []struct {
		name string
		got  []byte
		want []byte
	}{
		{"uint32", xdr.AppendUint32(pre, 0x01020304), h("01020304")},
		{"int32 -1", xdr.AppendInt32(pre, -1), h("ffffffff")},
		{"int32 min", xdr.AppendInt32(pre, math.MinInt32), h("80000000")},
		{"uint64", xdr.AppendUint64(pre, 0x0102030405060708), h("01020304 05060708")},
		{"true", xdr.AppendBool(pre, true), h("00000001")},
		{"false", xdr.AppendBool(pre, false), h("00000000")},
		{"fixed opaque 5", xdr.AppendFixedOpaque(pre, []byte("abcde")), h("61626364 65000000")},
		{"fixed opaque 4", xdr.AppendFixedOpaque(pre, []byte("abcd")), h("61626364")},
		{"opaque empty", xdr.AppendOpaque(pre, nil), h("00000000")},
		{"opaque 3", xdr.AppendOpaque(pre, []byte{1, 2, 3}), h("00000003 01020300")},
		{"string sillyprog", xdr.AppendString(pre, "sillyprog"), h(`00000009 // length 9
			7369 6c6c 7970 726f 6700 0000 // "sillyprog" + 3 bytes padding`)},
		{"string tcp", xdr.AppendString(pre, "tcp"), h("00000003 74637000")},
	} {
		if tc.got[0] != 0xee || !bytes.Equal(tc.got[1:], tc.want) {
			t.Errorf("%s: got %x, want ee%x", tc.name, tc.got, tc.want)
		}
	}
	b := []byte{9, 9, 9, 9, 9}
	xdr.PutUint32(b[1:], 0x80000010)
	if !bytes.Equal(b, h("09 80000010")) {
		t.Errorf("PutUint32: %x", b)
	}
	for n, want := range []int{0, 3, 2, 1, 0, 3} {
		if xdr.Padding(n) != want {
			t.Errorf("Padding(%d) = %d", n, xdr.Padding(n))
		}
	}
}

// With a 64-bit int a 0xffffffff length passes a max of 1<<32 and fails on
// the bytes left; with a 32-bit int the max itself stops it.
var bigErr, bigMsg = func() (error, string) {
	if uint64(math.MaxInt) > math.MaxUint32 {
		return xdr.ErrShort, "xdr: message too short: opaque at offset 0 (declared length 4294967295)"
	}
	return xdr.ErrTooLong, "xdr: length exceeds its limit: opaque at offset 0 (declared length 4294967295)"
}()

// Decoder hostile-input table: each case fails with the right sentinel,
// offset and declared length, and the failure is sticky.
func TestDecoderHostile(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		read func(d *xdr.Decoder)
		err  error
		msg  string
	}{
		{"empty uint32", nil, func(d *xdr.Decoder) { d.Uint32() }, xdr.ErrShort,
			"xdr: message too short: uint32 at offset 0"},
		{"3-byte uint32", h("000000"), func(d *xdr.Decoder) { d.Uint32() }, xdr.ErrShort,
			"xdr: message too short: uint32 at offset 0"},
		{"7-byte uint64", h("00000000 000000"), func(d *xdr.Decoder) { d.Uint64() }, xdr.ErrShort,
			"xdr: message too short: uint64 at offset 0"},
		{"second uint32 truncated", h("00000001 0000"), func(d *xdr.Decoder) { d.Uint32(); d.Uint32() }, xdr.ErrShort,
			"xdr: message too short: uint32 at offset 4"},
		{"opaque length 0xffffffff, max 9000", h("ffffffff 00000000"),
			func(d *xdr.Decoder) { d.Opaque(xdr.MaxDataSize) }, xdr.ErrTooLong,
			"xdr: length exceeds its limit: opaque at offset 0 (declared length 4294967295)"},
		{"opaque length 0xffffffff, max 1<<32", h("ffffffff 00000000"),
			func(d *xdr.Decoder) { d.Opaque(int(min(1<<32, uint64(math.MaxInt)))) }, bigErr, bigMsg},
		{"opaque length 0x7fffffff, max MaxInt (overflow on 32-bit)", h("7fffffff 00000000"),
			func(d *xdr.Decoder) { d.Opaque(math.MaxInt) }, xdr.ErrShort,
			"xdr: message too short: opaque at offset 0 (declared length 2147483647)"},
		{"string declares 100, 4 follow", h("00000064 41414141"),
			func(d *xdr.Decoder) { d.StringBytes(xdr.MaxDataSize) }, xdr.ErrShort,
			"xdr: message too short: string at offset 0 (declared length 100)"},
		{"string 9001 > max", h("00002329"), func(d *xdr.Decoder) { d.String(xdr.MaxDataSize) }, xdr.ErrTooLong,
			"xdr: length exceeds its limit: string at offset 0 (declared length 9001)"},
		{"string padding missing", h("00000001 41"), func(d *xdr.Decoder) { d.String(10) }, xdr.ErrShort,
			"xdr: message too short: string at offset 0 (declared length 1)"},
		{"string after uint32", h("00000007 00000005 4142"),
			func(d *xdr.Decoder) { d.Uint32(); d.String(10) }, xdr.ErrShort,
			"xdr: message too short: string at offset 4 (declared length 5)"},
		{"negative max", h("00000000"), func(d *xdr.Decoder) { d.Opaque(-1) }, xdr.ErrTooLong,
			"xdr: length exceeds its limit: opaque at offset 0"},
		{"fixed opaque beyond the message", h("01020304"), func(d *xdr.Decoder) { d.FixedOpaque(8) }, xdr.ErrShort,
			"xdr: message too short: fixed opaque at offset 0 (declared length 8)"},
		{"fixed opaque padding missing", h("010203"), func(d *xdr.Decoder) { d.FixedOpaque(3) }, xdr.ErrShort,
			"xdr: message too short: fixed opaque at offset 0 (declared length 3)"},
		{"fixed opaque negative", h("01020304"), func(d *xdr.Decoder) { d.FixedOpaque(-4) }, xdr.ErrShort,
			"xdr: message too short: fixed opaque at offset 0 (declared length 4294967292)"},
		{"list count larger than the message", h("00010000 00000001"), func(d *xdr.Decoder) {
			// The pattern every list decoder must follow: check the count
			// against the bytes left before looping or allocating.
			n := d.Uint32()
			if uint64(n)*4 > uint64(d.Remaining()) {
				d.FixedOpaque(int(n) * 4)
			}
		}, xdr.ErrShort, "xdr: message too short: fixed opaque at offset 4 (declared length 262144)"},
		{"trailing bytes", h("00000001 00"), func(d *xdr.Decoder) { d.Uint32(); d.Finish() }, xdr.ErrTrailing,
			"xdr: trailing bytes after message: end of message at offset 4"},
	} {
		var d xdr.Decoder
		d.Reset(tc.in)
		tc.read(&d)
		err := d.Err()
		var xe *xdr.Error
		if !errors.Is(err, tc.err) || !errors.As(err, &xe) || err.Error() != tc.msg {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.msg)
			continue
		}
		// Sticky: every later read returns the zero value and the same error.
		off := d.Offset()
		if d.Uint32() != 0 || d.Uint64() != 0 || d.Bool() || d.More() || d.Opaque(10) != nil ||
			d.String(10) != "" || d.FixedOpaque(0) != nil || d.Err() != err || d.Finish() != err || d.Offset() != off {
			t.Errorf("%s: error not sticky", tc.name)
		}
	}
}

// A rejected length costs the same whatever it claims: the decoder
// allocates the *Error and nothing sized from the wire.
func TestDecoderNoGrowthWithClaim(t *testing.T) {
	measure := func(claim uint32, limit int) (allocs float64, bytes uint64) {
		msg := xdr.AppendUint32(nil, claim)
		msg = append(msg, make([]byte, 8)...)
		var d xdr.Decoder
		read := func() {
			d.Reset(msg)
			if d.Opaque(limit) != nil || d.Err() == nil {
				t.Fatal("accepted")
			}
		}
		allocs = testing.AllocsPerRun(100, read)
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		for range 1000 {
			read()
		}
		runtime.ReadMemStats(&m1)
		return allocs, (m1.TotalAlloc - m0.TotalAlloc) / 1000
	}
	for _, limit := range []int{xdr.MaxDataSize, math.MaxInt} {
		a1, b1 := measure(16, limit)
		a2, b2 := measure(0xffffffff, limit)
		a3, b3 := measure(1<<30, limit)
		if a1 > 1 || a2 > 1 || a3 > 1 || b2 > 128 || b3 > 128 || b2 != b1 || b3 != b1 {
			t.Errorf("limit %d: allocs %v/%v/%v, bytes per rejection %d/%d/%d", limit, a1, a2, a3, b1, b2, b3)
		}
	}
}

// The success path does not allocate (except String, which copies).
func TestDecoderAllocs(t *testing.T) {
	msg := h(`00000001 ffffffff 00000000 00000002 00000001 // u32 i32 u64 bool
		00000003 61626300 // opaque
		00000003 74637000 // string
		61626364 // fixed 4`)
	var d xdr.Decoder
	if n := testing.AllocsPerRun(100, func() {
		d.Reset(msg)
		d.Uint32()
		d.Int32()
		d.Uint64()
		d.Bool()
		d.Opaque(10)
		d.StringBytes(10)
		d.FixedOpaque(4)
		if d.Finish() != nil {
			t.Fatal(d.Err())
		}
	}); n != 0 {
		t.Errorf("%v allocs", n)
	}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() {
		buf = xdr.AppendUint32(buf[:0], 1)
		buf = xdr.AppendString(buf, "udp6")
		buf = xdr.AppendOpaque(buf, msg[:5])
		buf = xdr.AppendUint64(buf, 7)
	}); n != 0 {
		t.Errorf("encoding: %v allocs", n)
	}
}

// Decoded variable-length data aliases the message and is capped, so an
// append to it cannot overwrite what follows.
func TestDecoderAliases(t *testing.T) {
	msg := h("00000002 41420000 00000007")
	var d xdr.Decoder
	d.Reset(msg)
	p := d.Opaque(10)
	if &p[0] != &msg[4] || cap(p) != 2 {
		t.Fatalf("cap %d", cap(p))
	}
	_ = append(p, 'X')
	if msg[6] != 0 {
		t.Fatal("append overwrote the padding")
	}
	if d.Uint32() != 7 || d.Remaining() != 0 || len(d.Rest()) != 0 || d.Finish() != nil {
		t.Fatal("tail")
	}
	// Bool and More are lenient (libtirpc): any non-zero word is TRUE.
	d.Reset(h("00000002 ffffffff 00000000"))
	if !d.Bool() || !d.More() || d.Bool() {
		t.Fatal("bool leniency")
	}
	// Padding content is ignored (libtirpc).
	d.Reset(h("00000001 41ffffff"))
	if s := d.String(4); s != "A" || d.Err() != nil {
		t.Fatalf("%q %v", s, d.Err())
	}
	if xdr.NewDecoder(msg).Uint32() != 2 {
		t.Fatal("NewDecoder")
	}
}

// ---- differential tests against github.com/davecgh/go-xdr ----

// mix is a struct covering every item kind the codec has, in refxdr's
// reflection shape.
type mix struct {
	U   uint32
	I   int32
	H   uint64
	B   bool
	O   []byte // opaque<limit>
	S   string // string<limit>
	F   [5]byte
	Arr []uint32 // uint32 list<limit>
}

const diffLimit = 64

func encodeMix(b []byte, m *mix) []byte {
	b = xdr.AppendUint32(b, m.U)
	b = xdr.AppendInt32(b, m.I)
	b = xdr.AppendUint64(b, m.H)
	b = xdr.AppendBool(b, m.B)
	b = xdr.AppendOpaque(b, m.O)
	b = xdr.AppendString(b, m.S)
	b = xdr.AppendFixedOpaque(b, m.F[:])
	b = xdr.AppendUint32(b, uint32(len(m.Arr)))
	for _, v := range m.Arr {
		b = xdr.AppendUint32(b, v)
	}
	return b
}

// decodeMix is the reference pattern for our decoders: fields in
// definition order, counts checked against a limit and the bytes left.
func decodeMix(msg []byte) (mix, error) {
	var m mix
	var d xdr.Decoder
	d.Reset(msg)
	m.U = d.Uint32()
	m.I = d.Int32()
	m.H = d.Uint64()
	m.B = d.Bool()
	m.O = d.Opaque(diffLimit)
	m.S = d.String(diffLimit)
	copy(m.F[:], d.FixedOpaque(5))
	n := d.Uint32()
	if d.Err() == nil {
		if n > diffLimit {
			return m, errors.New("list too long")
		}
		if uint64(n)*4 > uint64(d.Remaining()) {
			return m, errors.New("list count larger than the message")
		}
		for range n {
			m.Arr = append(m.Arr, d.Uint32())
		}
	}
	return m, d.Err()
}

func equalMix(a, b *mix) bool {
	return a.U == b.U && a.I == b.I && a.H == b.H && a.B == b.B && bytes.Equal(a.O, b.O) &&
		a.S == b.S && a.F == b.F && len(a.Arr) == len(b.Arr) &&
		(len(a.Arr) == 0 || string(encodeMix(nil, &mix{Arr: a.Arr})) == string(encodeMix(nil, &mix{Arr: b.Arr})))
}

func sampleMixes() []mix {
	return []mix{
		{},
		{U: 1, I: -1, H: math.MaxUint64, B: true, O: []byte{1}, S: "tcp", F: [5]byte{1, 2, 3, 4, 5}, Arr: []uint32{7}},
		{U: 100000, I: math.MinInt32, H: 1 << 40, O: bytes.Repeat([]byte{0xaa}, 63), S: strings.Repeat("x", 64),
			Arr: []uint32{1, 2, 3, 4, 5, 6, 7, 8}},
		{S: "0.0.0.0.0.111", O: []byte("superuser"), Arr: make([]uint32, diffLimit)},
	}
}

func TestDifferentialEncode(t *testing.T) {
	for i, m := range sampleMixes() {
		ours := encodeMix(nil, &m)
		var ref bytes.Buffer
		if _, err := refxdr.Marshal(&ref, &m); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, ref.Bytes()) {
			t.Errorf("sample %d: encodings differ\nours %x\nref  %x", i, ours, ref.Bytes())
		}
	}
}

func TestDifferentialDecode(t *testing.T) {
	for i, m := range sampleMixes() {
		msg := encodeMix(nil, &m)
		ours, err := decodeMix(msg)
		if err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		var ref mix
		if _, err := refxdr.UnmarshalLimited(bytes.NewReader(msg), &ref, diffLimit); err != nil {
			t.Fatalf("sample %d: refxdr: %v", i, err)
		}
		if !equalMix(&ours, &ref) || !equalMix(&ours, &m) {
			t.Errorf("sample %d: ours %+v\nref %+v", i, ours, ref)
		}
	}
}

// FuzzDecoder decodes arbitrary bytes with our Decoder and with refxdr
// (UnmarshalLimited, same per-item limit) and compares: when both succeed
// the values are equal; when only one does, the difference must be one of
// the documented leniencies (a bool word other than 0/1, which libtirpc
// accepts and refxdr rejects). It also checks that what we decode
// re-encodes to the bytes consumed, padding aside.
func FuzzDecoder(f *testing.F) {
	for _, m := range sampleMixes() {
		f.Add(encodeMix(nil, &m))
	}
	f.Add(h("00000001 00000002 00000000 00000003 00000002 ffffffff"))
	f.Add(h("00000000 00000000 00000000 00000000 00000000 ffffffff"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		ours, oerr := decodeMix(msg)
		var ref mix
		_, rerr := refxdr.UnmarshalLimited(bytes.NewReader(msg), &ref, diffLimit)
		boolWord := uint32(0)
		if len(msg) >= 20 {
			boolWord = uint32(msg[16])<<24 | uint32(msg[17])<<16 | uint32(msg[18])<<8 | uint32(msg[19])
		}
		switch {
		case oerr == nil && rerr == nil:
			if !equalMix(&ours, &ref) {
				t.Fatalf("values differ\nours %+v\nref  %+v", ours, ref)
			}
		case oerr == nil && rerr != nil:
			if boolWord <= 1 {
				t.Fatalf("refxdr rejects what we accept: %v", rerr)
			}
		case oerr != nil && rerr == nil:
			t.Fatalf("we reject what refxdr accepts: %v", oerr)
		}
		if oerr == nil {
			// Re-encoding gives the consumed bytes, modulo bool and padding.
			re := encodeMix(nil, &ours)
			if len(re) > len(msg) {
				t.Fatalf("re-encoding is longer than the input")
			}
			back, err := decodeMix(re)
			if err != nil || !equalMix(&back, &ours) {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}

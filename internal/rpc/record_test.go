package rpc

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// frag builds one fragment: a mark and its payload.
func frag(last bool, p []byte) []byte {
	m := uint32(len(p))
	if last {
		m |= 1 << 31
	}
	return append([]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}, p...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestRecordReader(t *testing.T) {
	p := func(s string) []byte { return []byte(s) }
	for _, tc := range []struct {
		name  string
		in    []byte
		max   int
		want  []string // records read before the error
		err   error    // final error
		bound int      // if > 0, cap of the buffer must stay within it
	}{
		{name: "one record", in: frag(true, p("abcd")), max: 100, want: []string{"abcd"}, err: io.EOF},
		{name: "nothing", in: nil, max: 100, err: io.EOF},
		{name: "three fragments", in: cat(frag(false, p("ab")), frag(false, p("cd")), frag(true, p("ef"))),
			max: 100, want: []string{"abcdef"}, err: io.EOF},
		{name: "pipelined", in: cat(frag(true, p("one")), frag(false, p("t")), frag(true, p("wo")), frag(true, p("3"))),
			max: 100, want: []string{"one", "two", "3"}, err: io.EOF},
		{name: "zero-length last fragment ends a non-empty record (RFC 5531 §11)",
			in: cat(frag(false, p("abc")), frag(true, nil)), max: 100, want: []string{"abc"}, err: io.EOF},
		{name: "empty non-last fragments inside a record",
			in: cat(frag(false, nil), frag(false, p("a")), frag(false, nil), frag(true, p("b"))), max: 100,
			want: []string{"ab"}, err: io.EOF},
		{name: "empty record", in: frag(true, nil), max: 100, err: ErrEmptyRecord},
		{name: "empty record of empty fragments", in: cat(frag(false, nil), frag(true, nil)), max: 100, err: ErrEmptyRecord},
		{name: "exactly at the cap", in: frag(true, make([]byte, 10)), max: 10, want: []string{string(make([]byte, 10))}, err: io.EOF},
		{name: "one byte over the cap", in: frag(true, make([]byte, 11)), max: 10, err: ErrRecordTooLarge},
		{name: "running total over the cap", in: cat(frag(false, make([]byte, 6)), frag(true, make([]byte, 6))),
			max: 10, err: ErrRecordTooLarge},
		{name: "fragment declares 2^31-1, nothing follows", in: h("ffffffff"), max: MaxRecord,
			err: ErrRecordTooLarge, bound: 1},
		{name: "fragment declares 9000, 10 bytes follow", in: cat(h("80002328"), make([]byte, 10)), max: MaxRecord,
			err: io.ErrUnexpectedEOF, bound: minGrow},
		{name: "record never ends: data fragments until the cap",
			in: bytes.Repeat(frag(false, make([]byte, 1000)), 20), max: MaxRecord, err: ErrRecordTooLarge},
		{name: "record never ends: endless empty fragments",
			in: bytes.Repeat(frag(false, nil), 5000), max: MaxRecord, err: ErrTooManyFrags, bound: 1},
		{name: "stream ends inside a mark", in: h("8000"), max: 100, err: io.ErrUnexpectedEOF},
		{name: "stream ends between fragments", in: frag(false, p("ab")), max: 100, err: io.ErrUnexpectedEOF},
		{name: "stream ends inside a fragment", in: cat(h("80000008"), p("abc")), max: 100, err: io.ErrUnexpectedEOF},
		{name: "good record then a truncated one", in: cat(frag(true, p("ok")), h("80000004 00")), max: 100,
			want: []string{"ok"}, err: io.ErrUnexpectedEOF},
	} {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = bytes.NewReader(tc.in)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			rr := NewRecordReader(r, tc.max)
			var got []string
			var err error
			for {
				var rec []byte
				rec, err = rr.Next()
				if err != nil {
					break
				}
				got = append(got, string(rec))
			}
			if err != tc.err || len(got) != len(tc.want) {
				t.Errorf("%s (one byte %v): records %q, err %v; want %q, %v", tc.name, oneByte, got, err, tc.want, tc.err)
				continue
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("%s: record %d = %q, want %q", tc.name, i, got[i], tc.want[i])
				}
			}
			// Sticky.
			if _, err2 := rr.Next(); err2 != err {
				t.Errorf("%s: second Next %v, want sticky %v", tc.name, err2, err)
			}
			if tc.bound > 0 && cap(rr.buf) > tc.bound {
				t.Errorf("%s: buffer grew to %d bytes, bound %d", tc.name, cap(rr.buf), tc.bound)
			}
		}
	}
}

// countReader counts bytes delivered.
type countReader struct {
	r io.Reader
	n int
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// The buffer grows with the bytes that arrive, never with the length a
// fragment declares: at most twice what was read (or minGrow).
func TestRecordReaderGrowsWithData(t *testing.T) {
	for _, sent := range []int{0, 1, 100, 600, 3000, 8999} {
		in := &countReader{r: bytes.NewReader(cat(h("80002328"), make([]byte, sent)))} // declares 9000
		rr := NewRecordReader(iotest.OneByteReader(in), MaxRecord)
		if _, err := rr.Next(); err != io.ErrUnexpectedEOF {
			t.Fatalf("sent %d: %v", sent, err)
		}
		payload := in.n - 4
		if bound := max(minGrow, 2*payload); cap(rr.buf) > bound {
			t.Errorf("sent %d payload bytes of a declared 9000: buffer %d, bound %d", payload, cap(rr.buf), bound)
		}
	}
}

// Reading records into the reused buffer does not allocate once warm.
func TestRecordReaderAllocs(t *testing.T) {
	stream := bytes.Repeat(cat(frag(false, make([]byte, 30)), frag(true, make([]byte, 30))), 200)
	br := bytes.NewReader(stream)
	rr := NewRecordReader(br, MaxRecord)
	rr.Next()
	if n := testing.AllocsPerRun(100, func() {
		if rec, err := rr.Next(); err != nil || len(rec) != 60 {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocs per record", n)
	}
}

func TestBeginEndRecord(t *testing.T) {
	b := []byte("prefix")
	b, start := BeginRecord(b)
	if start != 6 || len(b) != 10 {
		t.Fatalf("start %d len %d", start, len(b))
	}
	b = append(b, "hello, world"...)
	EndRecord(b, start)
	want := cat([]byte("prefix"), h("8000000c"), []byte("hello, world"))
	if !bytes.Equal(b, want) {
		t.Fatalf("got %x\nwant %x", b, want)
	}
	rr := NewRecordReader(bytes.NewReader(b[6:]), MaxRecord)
	if rec, err := rr.Next(); err != nil || string(rec) != "hello, world" {
		t.Fatalf("%q %v", rec, err)
	}
	// An empty message gives a mark of 0x80000000.
	b, start = BeginRecord(nil)
	EndRecord(b, start)
	if !bytes.Equal(b, h("80000000")) {
		t.Fatalf("%x", b)
	}
}

// A reader error other than EOF is passed through.
func TestRecordReaderError(t *testing.T) {
	boom := errors.New("boom")
	rr := NewRecordReader(iotest.ErrReader(boom), MaxRecord)
	if _, err := rr.Next(); err != boom {
		t.Fatal(err)
	}
	rr = NewRecordReader(io.MultiReader(bytes.NewReader(h("80000008 0102")), iotest.ErrReader(boom)), MaxRecord)
	if _, err := rr.Next(); err != boom {
		t.Fatal(err)
	}
	rr.Reset(bytes.NewReader(frag(true, []byte("x"))))
	if rec, err := rr.Next(); err != nil || string(rec) != "x" {
		t.Fatal(rec, err)
	}
}

package warmstart

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func seedFiles(f *testing.F, name string) {
	for _, d := range []string{"fresh", "registered"} {
		if b, err := os.ReadFile(filepath.Join(testdata, d, name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
}

// Decoded lists survive a re-encoding (padding bytes and "more" words are
// not checked, as libtirpc does not).
func FuzzDecodeRPCBList(f *testing.F) {
	seedFiles(f, RPCBFile)
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := DecodeRPCBList(b)
		if err != nil {
			return
		}
		again, err := DecodeRPCBList(AppendRPCBList(nil, es))
		if err != nil || !reflect.DeepEqual(again, es) && len(es) > 0 {
			t.Fatalf("round trip: %v %v", again, err)
		}
	})
}

func FuzzDecodePmapList(f *testing.F) {
	seedFiles(f, PmapFile)
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := DecodePmapList(b)
		if err != nil {
			return
		}
		// Equal bytes but for "more" words other than 1 (any non-zero
		// is TRUE, as xdr_bool).
		enc := AppendPmapList(nil, ms)
		for i := 0; i < len(ms); i++ {
			copy(enc[i*20:i*20+4], b[i*20:i*20+4])
		}
		if !bytes.Equal(enc, b[:len(enc)]) {
			t.Fatalf("re-encoding differs")
		}
	})
}

// The journal reader never panics, never reads past the end, and stops at
// a record boundary that a second scan agrees with.
func FuzzJournal(f *testing.F) {
	j := appendHeader(nil, base{})
	for _, st := range steps {
		j = appendRecord(j, st.op, &st.e)
	}
	f.Add(j)
	f.Add(j[:len(j)-5])
	f.Add(j[:headerLen])
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := parseHeader(b); err != nil {
			return
		}
		n := 0
		end, err := scanRecords(b, headerLen, func(Op, *Entry) { n++ })
		if end < headerLen || end > len(b) || (err == nil) != (end == len(b)) {
			t.Fatalf("end %d of %d, err %v", end, len(b), err)
		}
		m := 0
		end2, err2 := scanRecords(b[:end], headerLen, func(Op, *Entry) { m++ })
		if end2 != end || err2 != nil || m != n {
			t.Fatalf("rescan of the valid prefix: %d %v %d/%d", end2, err2, m, n)
		}
	})
}

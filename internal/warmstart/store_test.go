package warmstart

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var (
	entA = ent(200001, 1, "tcp", "0.0.0.0.3.232", "superuser")
	entB = ent(200001, 1, "udp", "0.0.0.0.3.233", "superuser")
	entC = ent(200002, 1, "local", "/run/x.sock", "1000")
	entD = ent(200003, 2, "udp6", "::1.3.3", "unknown")
	entE = ent(200004, 1, "tcp", "127.0.0.1.4.4", "unknown")
)

type step struct {
	op Op
	e  Entry
}

// steps and, for each prefix length, the entries a recovery must return.
var (
	steps = []step{{OpSet, entA}, {OpSet, entB}, {OpSet, entC}, {OpUnset, entB}, {OpSet, entD}}
	after = [][]Entry{{}, {entA}, {entA, entB}, {entA, entB, entC}, {entA, entC}, {entA, entC, entD}}
)

// started returns a Store over dir holding selfEntries, its journal empty.
func started(t *testing.T, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if es, err := s.Recover(); err != nil || len(es) != 0 {
		t.Fatalf("recover of an empty dir: %v, %v", es, err)
	}
	if err := s.Compact(selfEntries); err != nil {
		t.Fatal(err)
	}
	return s
}

func recoverDir(t *testing.T, dir string) ([]Entry, error) {
	t.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	es, err := s.Recover()
	if es == nil {
		es = []Entry{}
	}
	return es, err
}

func copyDir(t *testing.T, from string, journal []byte) string {
	t.Helper()
	to := t.TempDir()
	for _, n := range []string{RPCBFile, PmapFile} {
		b, err := os.ReadFile(filepath.Join(from, n))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(to, n), b, 0o600)
	}
	os.WriteFile(filepath.Join(to, JournalFile), rebase(t, to, journal), 0o600)
	return to
}

// rebase points a journal's header at dir's rpcbind.xdr, as if the copy
// were the very file it was written against; a journal too short to hold a
// header is returned as it is.
func rebase(t *testing.T, dir string, journal []byte) []byte {
	t.Helper()
	bs, err := parseHeader(journal)
	if err != nil {
		return journal
	}
	f, err := os.Open(filepath.Join(dir, RPCBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if bs.id, err = statID(f); err != nil {
		t.Fatal(err)
	}
	return append(appendHeader(nil, bs), journal[headerLen:]...)
}

// recordEnds walks the frames of a journal written by the test.
func recordEnds(j []byte) []int {
	ends := []int{headerLen}
	for off := headerLen; off < len(j); {
		off += frameLen + int(binary.BigEndian.Uint32(j[off:]))
		ends = append(ends, off)
	}
	return ends
}

func writeSteps(t *testing.T) (dir string, journal []byte) {
	dir = t.TempDir()
	s := started(t, dir, Options{})
	for _, st := range steps {
		if err := s.Append(st.op, st.e); err != nil {
			t.Fatal(err)
		}
	}
	// No Close: the process "dies" here, as with kill -9.
	j, err := os.ReadFile(filepath.Join(dir, JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	return dir, j
}

// A kill -9 can stop the journal at any byte: recovery returns exactly the
// records whose Append had returned, and appending afterwards works.
func TestJournalCutAtEveryOffset(t *testing.T) {
	dir, j := writeSteps(t)
	ends := recordEnds(j)
	if len(ends) != len(steps)+1 || ends[len(ends)-1] != len(j) {
		t.Fatalf("record ends %v, journal %d bytes", ends, len(j))
	}
	for cut := 0; cut <= len(j); cut++ {
		d := copyDir(t, dir, j[:cut])
		k := 0
		for k+1 < len(ends) && ends[k+1] <= cut {
			k++
		}
		es, err := recoverDir(t, d)
		if cut < headerLen {
			if err == nil || !strings.Contains(err.Error(), "header invalid") {
				t.Fatalf("cut %d in the header: err %v", cut, err)
			}
		} else if err != nil {
			t.Fatalf("cut %d: torn tail reported as damage: %v", cut, err)
		}
		if !reflect.DeepEqual(es, after[k]) {
			t.Fatalf("cut %d: got %v, want %v", cut, es, after[k])
		}
		if cut < headerLen {
			continue
		}
		// The torn bytes are gone: a new record is found by the next recovery.
		if fi, _ := os.Stat(filepath.Join(d, JournalFile)); fi.Size() != int64(ends[k]) {
			t.Fatalf("cut %d: journal not cut back to %d: %d", cut, ends[k], fi.Size())
		}
	}
}

func TestJournalAppendAfterTornTail(t *testing.T) {
	dir, j := writeSteps(t)
	d := copyDir(t, dir, j[:len(j)-3])
	s, _ := Open(d, Options{})
	if _, err := s.Recover(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(OpSet, entE); err != nil {
		t.Fatal(err)
	}
	es, err := recoverDir(t, d)
	if want := []Entry{entA, entC, entE}; err != nil || !reflect.DeepEqual(es, want) {
		t.Errorf("got %v, %v; want %v", es, err, want)
	}
}

// A complete record with a bad CRC stops the replay at that record.
func TestJournalCRCMismatch(t *testing.T) {
	dir, j := writeSteps(t)
	ends := recordEnds(j)
	bad := bytes.Clone(j)
	bad[ends[1]+frameLen+5] ^= 0x40 // inside record 2's payload
	d := copyDir(t, dir, bad)
	s, _ := Open(d, Options{})
	es, err := s.Recover()
	if !errors.Is(err, ErrBadCRC) {
		t.Errorf("err = %v, want ErrBadCRC", err)
	}
	if !reflect.DeepEqual(es, after[1]) {
		t.Errorf("got %v, want %v", es, after[1])
	}
	if err := s.Append(OpSet, entE); err != nil {
		t.Fatal(err)
	}
	if es, err := recoverDir(t, d); err != nil || !reflect.DeepEqual(es, []Entry{entA, entE}) {
		t.Errorf("after append: %v, %v", es, err)
	}
}

// A journal is never replayed on files another daemon wrote since.
func TestJournalStale(t *testing.T) {
	dir, j := writeSteps(t)
	d := copyDir(t, dir, j)
	os.WriteFile(filepath.Join(d, RPCBFile), golden(t, "registered/rpcbind.xdr"), 0o600)
	es, err := recoverDir(t, d)
	if err == nil || !strings.Contains(err.Error(), "voided, 5 records discarded: rpcbind.xdr holds other registrations") {
		t.Errorf("err = %v", err)
	}
	if !reflect.DeepEqual(es, registered) {
		t.Errorf("got %v, want the C daemon's registrations", es)
	}

	// An empty stale journal (ours stopped cleanly, then the C daemon ran)
	// loses nothing and is replaced silently.
	d = copyDir(t, dir, j)
	jp := filepath.Join(d, JournalFile)
	if b, err := os.ReadFile(jp); err != nil || len(b) < headerLen {
		t.Fatalf("journal: %d bytes, %v", len(b), err)
	} else if err := os.WriteFile(jp, b[:headerLen], 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d, RPCBFile), golden(t, "registered/rpcbind.xdr"), 0o600)
	if es, err := recoverDir(t, d); err != nil || !reflect.DeepEqual(es, registered) {
		t.Errorf("empty stale journal: %v, %v", es, err)
	}
}

// rpcbind.xdr is the master; an undecodable one is unlinked (reference
// message) and the table starts from scratch, as the reference: portmap.xdr
// is not used in its place (DECISIONS "the v2 view").
func TestRecoverFromCFiles(t *testing.T) {
	d := t.TempDir()
	os.WriteFile(filepath.Join(d, RPCBFile), golden(t, "registered/rpcbind.xdr"), 0o600)
	os.WriteFile(filepath.Join(d, PmapFile), []byte("not a pmaplist"), 0o600)
	es, err := recoverDir(t, d)
	if err != nil || !reflect.DeepEqual(es, registered) {
		t.Errorf("rpcbind.xdr master: %v, %v", es, err)
	}

	d = t.TempDir()
	os.WriteFile(filepath.Join(d, RPCBFile), golden(t, "registered/rpcbind.xdr")[:100], 0o600)
	os.WriteFile(filepath.Join(d, PmapFile), golden(t, "registered/portmap.xdr"), 0o600)
	es, err = recoverDir(t, d)
	var de *DecodeError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "xdr_"+filepath.Join(d, RPCBFile)+": failed") {
		t.Errorf("err = %v", err)
	}
	if _, serr := os.Stat(filepath.Join(d, RPCBFile)); !os.IsNotExist(serr) {
		t.Error("undecodable rpcbind.xdr not unlinked")
	}
	if len(es) != 0 {
		t.Errorf("undecodable rpcbind.xdr: recovered %v, want nothing", es)
	}
}

// Compaction bounds the journal and keeps the set; Close leaves the
// C-format files with the whole table and an empty journal.
func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	s := started(t, dir, Options{CompactFloor: 8})
	var model []Entry
	for i := 0; i < 500; i++ {
		e := ent(300000+uint32(i%37), uint32(i%3), []string{"tcp", "udp", "tcp6"}[i%3], "0.0.0.0.1.1", "superuser")
		op := OpSet
		if i%5 == 4 {
			op, e = OpUnset, model[(i*7)%len(model)]
		}
		if err := s.Append(op, e); err != nil {
			t.Fatal(err)
		}
		model = applyModel(model, op, e)
		if s.records > max(2*(len(model)+len(selfEntries)), 8)+1 {
			t.Fatalf("step %d: %d records for %d entries", i, s.records, len(model))
		}
	}
	es, err := recoverDir(t, dir)
	if err != nil || !reflect.DeepEqual(es, model) {
		t.Fatalf("recovered %d entries (%v), want %d", len(es), err, len(model))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rb, _ := os.ReadFile(filepath.Join(dir, RPCBFile))
	if want := AppendRPCBList(nil, cat(selfEntries, model)); !bytes.Equal(rb, want) {
		t.Error("rpcbind.xdr after Close is not the whole table")
	}
	pb, _ := os.ReadFile(filepath.Join(dir, PmapFile))
	if want := AppendPmapList(nil, PmapView(cat(selfEntries, model))); !bytes.Equal(pb, want) {
		t.Error("portmap.xdr after Close is not the v2 view")
	}
	if fi, _ := os.Stat(filepath.Join(dir, JournalFile)); fi.Size() != headerLen {
		t.Errorf("journal after Close: %d bytes", fi.Size())
	}
	if err := s.Append(OpSet, entA); !errors.Is(err, ErrClosed) {
		t.Errorf("append after close: %v", err)
	}
}

// applyModel is the registry's rule, written out independently of entrySet.
func applyModel(m []Entry, op Op, e Entry) []Entry {
	for i, x := range m {
		if x.Prog == e.Prog && x.Vers == e.Vers && strings.EqualFold(x.Netid, e.Netid) {
			if op == OpUnset {
				return append(m[:i:i], m[i+1:]...)
			}
			return m
		}
	}
	if op == OpSet {
		return append(m, e)
	}
	return m
}

func TestUnsetAllNetids(t *testing.T) {
	s := newEntrySet([]Entry{entA, entB, entC, ent(200001, 1, "TCP6", "::.3.1", "x")})
	u := ent(200001, 1, "", "", "")
	s.apply(OpUnset, &u)
	if got := s.entries(); !reflect.DeepEqual(got, []Entry{entC}) {
		t.Errorf("got %v", got)
	}
	dup := ent(200002, 1, "LOCAL", "/other", "y") // same key, case-insensitive
	s.apply(OpSet, &dup)
	if got := s.entries(); !reflect.DeepEqual(got, []Entry{entC}) {
		t.Errorf("duplicate key appended: %v", got)
	}
}

func TestAppendBeforeStart(t *testing.T) {
	s, _ := Open(t.TempDir(), Options{})
	if err := s.Append(OpSet, entA); !errors.Is(err, ErrNotStarted) {
		t.Errorf("err = %v", err)
	}
	if _, err := Open("", Options{}); err == nil {
		t.Error("empty dir accepted")
	}
}

func BenchmarkAppend(b *testing.B) {
	s := started(&testing.T{}, b.TempDir(), Options{})
	b.ReportAllocs()
	e := entA
	for i := 0; b.Loop(); i++ {
		e.Prog = 400000 + uint32(i)
		if err := s.Append(OpSet, e); err != nil {
			b.Fatal(err)
		}
	}
}

// 10,000 registrations in a row: the cost per append must stay flat
// (compactions are amortised), compare ns/append with BenchmarkAppend.
func BenchmarkAppend10k(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		s := started(&testing.T{}, b.TempDir(), Options{})
		e := entA
		for i := 0; i < 10000; i++ {
			e.Prog = 400000 + uint32(i)
			if err := s.Append(OpSet, e); err != nil {
				b.Fatal(err)
			}
		}
		s.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*10000), "ns/append")
}

// TestJournalVoidedByRewrittenBase: a journal left by a kill -9 is not
// replayed when its base was rewritten by another run, even with identical
// bytes (issue 11 item 7: Debian's rpcbind -w ran in between, read the
// base, exited and wrote the same bytes; our -w brought the dead
// registrations back). Length and CRC match in every case here; only the
// write differs.
func TestJournalVoidedByRewrittenBase(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rewrite func(t *testing.T, path string, b []byte)
		voided  bool
	}{
		{"untouched", func(*testing.T, string, []byte) {}, false},
		{"read only", func(t *testing.T, path string, _ []byte) {
			if _, err := os.ReadFile(path); err != nil {
				t.Fatal(err)
			}
		}, false},
		// The C daemon with -w: read, unlink, create a new file at exit.
		{"new file, same bytes", func(t *testing.T, path string, b []byte) {
			time.Sleep(20 * time.Millisecond) // the other run takes time
			os.Remove(path)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, true},
		// The C daemon without -w: fopen("w") truncates the same inode.
		{"same inode, same bytes", func(t *testing.T, path string, b []byte) {
			var before, after unix.Stat_t
			unix.Stat(path, &before)
			time.Sleep(20 * time.Millisecond) // past the coarse clock's tick
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			unix.Stat(path, &after)
			if before.Ino != after.Ino || before.Ctim == after.Ctim {
				t.Fatalf("rewrite in place: inode %d→%d ctime %v→%v", before.Ino, after.Ino, before.Ctim, after.Ctim)
			}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := started(t, dir, Options{})
			for _, e := range []Entry{entA, entC} {
				if err := s.Append(OpSet, e); err != nil {
					t.Fatal(err)
				}
			}
			// kill -9: no Close.
			rp := filepath.Join(dir, RPCBFile)
			b, err := os.ReadFile(rp)
			if err != nil {
				t.Fatal(err)
			}
			tc.rewrite(t, rp, b)
			if got, _ := os.ReadFile(rp); !bytes.Equal(got, b) {
				t.Fatal("the rewrite changed the bytes")
			}
			es, err := recoverDir(t, dir)
			if !tc.voided {
				if err != nil || !reflect.DeepEqual(es, []Entry{entA, entC}) {
					t.Fatalf("journal over its own base: %v, %v", es, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "voided, 2 records discarded: rpcbind.xdr was rewritten by another run, with the same bytes") {
				t.Errorf("err = %v", err)
			}
			if len(es) != 0 {
				t.Errorf("recovered %v, want nothing (the base holds only program 100000)", es)
			}
			// The next start finds a fresh journal: nothing to report.
			if es, err := recoverDir(t, dir); err != nil || len(es) != 0 {
				t.Errorf("second recovery: %v, %v", es, err)
			}
		})
	}
}

// TestJournalFirstLayoutVoided: a journal of the first layout (no base
// identity) cannot prove its base: it is not replayed, and its records are
// counted in the message; an empty one is replaced silently.
func TestJournalFirstLayoutVoided(t *testing.T) {
	dir, j := writeSteps(t)
	rb, _ := os.ReadFile(filepath.Join(dir, RPCBFile))
	v1 := append([]byte(journalMagicV1), make([]byte, 12)...)
	binary.BigEndian.PutUint32(v1[8:], baseRPCB)
	binary.BigEndian.PutUint32(v1[12:], uint32(len(rb)))
	binary.BigEndian.PutUint32(v1[16:], crc32.Checksum(rb, castagnoli))
	v1 = binary.BigEndian.AppendUint32(v1, crc32.Checksum(v1, castagnoli))
	for _, tc := range []struct {
		records []byte
		want    string
	}{
		{j[headerLen:], "voided, 5 records discarded: written by an older version"},
		{nil, ""},
	} {
		os.WriteFile(filepath.Join(dir, JournalFile), append(v1[:headerLenV1:headerLenV1], tc.records...), 0o600)
		es, err := recoverDir(t, dir)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%d bytes of records: err %v, want %q", len(tc.records), err, tc.want)
		}
		if len(es) != 0 {
			t.Errorf("first-layout journal replayed: %v", es)
		}
	}
}

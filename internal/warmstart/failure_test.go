package warmstart

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const failureHelperEnv = "WARMSTART_FAILURE_DIR"

// Persistence failures (read-only or full directory) are returned as
// errors, never crash, keep the in-memory view, and heal once the disk does.
// Root ignores permissions, so the test re-runs itself in a private mount
// namespace on a small tmpfs it can remount read-only and fill.
func TestPersistenceFailure(t *testing.T) {
	if dir := os.Getenv(failureHelperEnv); dir != "" {
		persistenceFailure(t, dir)
		return
	}
	if os.Geteuid() != 0 {
		// Unprivileged: a directory without write permission.
		dir := t.TempDir()
		os.Chmod(dir, 0o500)
		defer os.Chmod(dir, 0o700)
		s, _ := Open(dir, Options{})
		if _, err := s.Recover(); err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("recover in a read-only dir: %v", err)
		}
		if err := s.Append(OpSet, entA); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, RPCBFile)) {
			t.Errorf("append in a read-only dir: %v", err)
		}
		return
	}
	dir := t.TempDir()
	cmd := exec.Command("unshare", "-m", os.Args[0], "-test.run=^TestPersistenceFailure$", "-test.v")
	cmd.Env = append(os.Environ(), failureHelperEnv+"="+dir)
	b, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "--- PASS: TestPersistenceFailure") {
		t.Fatalf("helper: %v\n%s", err, b)
	}
}

func persistenceFailure(t *testing.T, dir string) {
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"))
	remount := func(flags uintptr) { must(unix.Mount("", dir, "", unix.MS_REMOUNT|flags, "size=256k")) }

	s := started(t, dir, Options{})
	must(s.Append(OpSet, entA))
	must(s.Close())

	// Read-only (no file may be open for writing to remount): a daemon
	// starting there recovers what is saved and is told why it cannot
	// write; its view keeps every change.
	remount(unix.MS_RDONLY)
	s, _ = Open(dir, Options{})
	es, err := s.Recover()
	if !errors.Is(err, syscall.EROFS) || !reflect.DeepEqual(es, []Entry{entA}) {
		t.Errorf("recover on a read-only fs: %v, %v", es, err)
	}
	err = s.Compact(cat(selfEntries, es))
	if !errors.Is(err, syscall.EROFS) || !strings.Contains(err.Error(), filepath.Join(dir, RPCBFile)) {
		t.Errorf("compact on a read-only fs: %v", err)
	}
	if err := s.Append(OpSet, entB); !errors.Is(err, syscall.EROFS) {
		t.Errorf("append on a read-only fs: %v", err)
	}
	if s.Err() == nil {
		t.Error("Err() nil while degraded")
	}

	// Writable again: a Retry (the daemon's timer) rewrites everything,
	// B included, with no new change; the next Append goes on from there.
	remount(0)
	must(s.Retry())
	if s.Err() != nil {
		t.Errorf("Err() after Retry: %v", s.Err())
	}
	if es, err := recoverDir(t, dir); err != nil || !reflect.DeepEqual(es, []Entry{entA, entB}) {
		t.Errorf("after Retry: %v, %v", es, err)
	}
	must(s.Retry()) // nothing pending: a no-op
	must(s.Append(OpSet, entC))
	if s.Err() != nil {
		t.Errorf("Err() after healing: %v", s.Err())
	}
	if es, err := recoverDir(t, dir); err != nil || !reflect.DeepEqual(es, []Entry{entA, entB, entC}) {
		t.Errorf("after healing: %v, %v", es, err)
	}

	// Full: appends start failing with ENOSPC; nothing acknowledged is lost.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	must(err)
	buf := make([]byte, 4096)
	for {
		if _, err := filler.Write(buf); err != nil {
			break
		}
	}
	model := []Entry{entA, entB, entC}
	failed := false
	for i := 0; i < 2000 && !failed; i++ {
		e := ent(500000+uint32(i), 1, "tcp", "0.0.0.0.1.1", "superuser")
		model = append(model, e)
		if err := s.Append(OpSet, e); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("append on a full fs: %v", err)
			}
			failed = true
		}
	}
	if !failed {
		t.Fatal("the full file system never refused an append")
	}
	filler.Close()
	must(os.Remove(filepath.Join(dir, "filler")))
	// While broken, Append retries the full write at most once per
	// RetryBackoff; the daemon's timer calls Retry, which heals at once.
	must(s.Retry())
	must(s.Append(OpSet, entD))
	model = append(model, entD)
	if es, err := recoverDir(t, dir); err != nil || !reflect.DeepEqual(es, model) {
		t.Errorf("after freeing space: %d entries, %v; want %d", len(es), err, len(model))
	}
	must(s.Close())

	// Read-only while running: a remount is refused (EBUSY) while the
	// journal is open for writing, but a read-only bind mount of the same
	// directory gives every new file EROFS while the open journal still
	// takes appends. The compaction that then fails is returned, and Err
	// stays set (Retry keeps trying) until one succeeds.
	sub := filepath.Join(dir, "ro")
	must(os.Mkdir(sub, 0o755))
	s = started(t, sub, Options{CompactFloor: 8})
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, "size=256k"); !errors.Is(err, syscall.EBUSY) {
		t.Errorf("remount read-only with the journal open: %v, want EBUSY", err)
	}
	must(unix.Mount(sub, sub, "", unix.MS_BIND, ""))
	must(unix.Mount("", sub, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""))
	// Churn (SET then UNSET) grows the journal past twice the table.
	var cerr error
	for i := 0; i < 100 && cerr == nil; i++ {
		e := ent(600000+uint32(i), 1, "udp", "0.0.0.0.1.2", "superuser")
		if cerr = s.Append(OpSet, e); cerr == nil {
			cerr = s.Append(OpUnset, e)
		}
	}
	if !errors.Is(cerr, syscall.EROFS) || !strings.Contains(cerr.Error(), sub) {
		t.Errorf("append whose compaction meets a read-only directory: %v, want EROFS naming %s", cerr, sub)
	}
	must(s.Append(OpSet, entA)) // durable in the open journal, no compaction due
	model = []Entry{entA}
	if !errors.Is(s.Err(), syscall.EROFS) {
		t.Errorf("Err() after a durable append with the compaction still failing: %v", s.Err())
	}
	must(unix.Unmount(sub, 0)) // the read-only bind: writable again
	must(s.Retry())
	if s.Err() != nil {
		t.Errorf("Err() after Retry: %v", s.Err())
	}
	if es, err := recoverDir(t, sub); err != nil || !reflect.DeepEqual(es, model) {
		t.Errorf("after a read-only spell: %d entries, %v; want %d", len(es), err, len(model))
	}
	must(s.Close())
}

// TestBrokenJournalAppendsStayO1: while the directory cannot be written,
// an Append keeps the change in memory and reports the failure, trying the
// full rewrite at most once per RetryBackoff — 10,000 SETs on a broken
// directory must not rewrite the table 10,000 times (they took 74 s).
func TestBrokenJournalAppendsStayO1(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(nil); err != nil {
		t.Fatal(err)
	}
	// Break both the open journal and every new file.
	s.f.Close()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	before := s.compactions
	var failures int
	for i := 0; i < 10000; i++ {
		if err := s.Append(OpSet, ent(600000+uint32(i), 1, "tcp", "0.0.0.0.1.1", "superuser")); err != nil {
			failures++
		}
	}
	if failures != 10000 {
		t.Errorf("%d of 10000 appends reported the broken directory", failures)
	}
	// One try when the write first fails, then at most one per second.
	if n := s.compactions - before; n > 3 {
		t.Errorf("%d full rewrites for 10000 appends on a broken directory, want a handful", n)
	}
	if s.Err() == nil {
		t.Error("Err() is nil while the directory is gone")
	}
	// The directory comes back: Retry heals and nothing is lost.
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.Retry(); err != nil {
		t.Fatalf("Retry after the directory came back: %v", err)
	}
	if es, err := recoverDir(t, dir); err != nil || len(es) != 10000 {
		t.Errorf("after healing: %d entries, %v; want 10000", len(es), err)
	}
}

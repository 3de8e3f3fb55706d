package warmstart

import (
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const memfsHelperEnv = "WARMSTART_MEMFS_DIR"

// On tmpfs (Debian's /run) a journalled change costs one pwrite and no
// fdatasync, which does nothing there; every change acknowledged is in
// the journal a new daemon recovers without the old one closing (a kill
// -9). Elsewhere each change is still followed by its fdatasync. Root
// re-runs the test in a private mount namespace on a tmpfs it mounts.
func TestMemoryFSJournal(t *testing.T) {
	if dir := os.Getenv(memfsHelperEnv); dir != "" {
		memoryFSJournal(t, dir)
		return
	}
	// The test's own directory: synced unless it is on a memory fs.
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	mem := st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC
	s := started(t, dir, Options{})
	if s.memfs != mem {
		t.Errorf("%s (fs type %#x): memfs %v, want %v", dir, st.Type, s.memfs, mem)
	}
	wantSyncs := 3
	if mem {
		wantSyncs = 0
	}
	if n := countSyncs(t, s); n != wantSyncs {
		t.Errorf("%s: %d fdatasyncs for 3 changes, want %d", dir, n, wantSyncs)
	}
	if os.Geteuid() != 0 {
		t.Log("not root: the tmpfs case runs only as root")
		return
	}
	tdir := t.TempDir()
	cmd := exec.Command("unshare", "-m", os.Args[0], "-test.run=^TestMemoryFSJournal$", "-test.v")
	cmd.Env = append(os.Environ(), memfsHelperEnv+"="+tdir)
	b, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(b), "--- PASS: TestMemoryFSJournal") {
		t.Fatalf("helper: %v\n%s", err, b)
	}
}

// countSyncs appends SET A, SET B, UNSET A and returns the fdatasyncs made.
func countSyncs(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	fdatasync = func(fd int) error { n++; return unix.Fdatasync(fd) }
	defer func() { fdatasync = unix.Fdatasync }()
	for _, st := range []step{{OpSet, entA}, {OpSet, entB}, {OpUnset, entA}} {
		if err := s.Append(st.op, st.e); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func memoryFSJournal(t *testing.T, dir string) {
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	s := started(t, dir, Options{})
	if !s.memfs {
		t.Fatal("a journal on tmpfs not seen as on a memory file system")
	}
	if n := countSyncs(t, s); n != 0 {
		t.Errorf("tmpfs: %d fdatasyncs for 3 changes, want 0", n)
	}
	// No Close: the journal alone must hold the changes.
	if es, err := recoverDir(t, dir); err != nil || !reflect.DeepEqual(es, []Entry{entB}) {
		t.Errorf("recovered %v, %v; want [B]", es, err)
	}
	// Still appending after that recovery reopened the journal, with the
	// records where a reader finds them.
	if err := s.Append(OpSet, entC); err != nil {
		t.Fatal(err)
	}
	if es, err := recoverDir(t, dir); err != nil || !reflect.DeepEqual(es, []Entry{entB, entC}) {
		t.Errorf("recovered %v, %v; want [B C]", es, err)
	}
}

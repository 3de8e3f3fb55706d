package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rpcbind.lock")
	l1, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("lock file mode %v, %v; want 0444", fi.Mode(), err)
	}
	// flock belongs to the open file description: a second open conflicts
	// even in the same process, as a second daemon would.
	if _, err := Lock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock: %v, want ErrLocked", err)
	}
	if ErrLocked.Error() != "another rpcbind is already running. Aborting" {
		t.Errorf("message %q differs from the reference", ErrLocked)
	}
	l1.Close()
	// A stale file left by a dead daemon does not block.
	l2, err := Lock(path)
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	l2.Close()
}

package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cleanStatus is a thread's status after a complete drop.
const cleanStatus = "Name:\trpcbind\nUid:\t102\t102\t102\t102\nNoNewPrivs:\t1\n" +
	"CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n" +
	"CapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\n"

// TestVerifyTasks: one thread left with a capability set, no_new_privs
// unset or uid 0 fails the check, and the error names the thread and the
// field (issue 11 item 5: with cgo, 7 of 8 threads kept CapBnd).
func TestVerifyTasks(t *testing.T) {
	for _, tc := range []struct {
		name, bad, want string
	}{
		{"clean", "", ""},
		{"bounding set", strings.Replace(cleanStatus, "CapBnd:\t0000000000000000", "CapBnd:\t00000000000004c1", 1), "thread 12 CapBnd \"00000000000004c1\""},
		{"inheritable", strings.Replace(cleanStatus, "CapInh:\t0000000000000000", "CapInh:\t0000000000000400", 1), "thread 12 CapInh"},
		{"ambient", strings.Replace(cleanStatus, "CapAmb:\t0000000000000000", "CapAmb:\t0000000000000400", 1), "thread 12 CapAmb"},
		{"no_new_privs", strings.Replace(cleanStatus, "NoNewPrivs:\t1", "NoNewPrivs:\t0", 1), "thread 12 NoNewPrivs \"0\""},
		{"saved uid 0", strings.Replace(cleanStatus, "Uid:\t102\t102\t102\t102", "Uid:\t102\t102\t0\t102", 1), "thread 12 Uid"},
		{"field missing", strings.Replace(cleanStatus, "CapAmb:\t0000000000000000\n", "", 1), "thread 12 CapAmb \"\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for tid, st := range map[string]string{"11": cleanStatus, "12": tc.bad} {
				if st == "" {
					st = cleanStatus
				}
				os.MkdirAll(filepath.Join(dir, tid), 0o755)
				if err := os.WriteFile(filepath.Join(dir, tid, "status"), []byte(st), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := verifyTasks(dir)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("clean threads: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			case tc.want != "" && strings.Contains(err.Error(), "thread 11"):
				t.Errorf("clean thread 11 reported: %v", err)
			}
		})
	}
	if err := verifyTasks(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("an unreadable task list passed the check")
	}
}

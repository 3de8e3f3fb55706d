package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// envHelper selects the helper test run in a child process.
const envHelper = "TESTENV_HELPER"

// TestHelper is the child: it asks for something that is not there.
func TestHelper(t *testing.T) {
	switch os.Getenv(envHelper) {
	case "":
		t.Skip("helper for TestMissing")
	case "tool":
		Tool(t, "no-such-tool-testenv", "/nonexistent/testenv")
	case "file":
		File(t, "the testenv package", "/nonexistent/*/libtestenv.so")
	}
	t.Log("testenv: reached the end") // never, when the requirement stops t
}

// TestMissing: a missing requirement fails the test, naming it, unless
// RPCBIND_REDUCED=1 asks for a reduced run, which skips it and logs the skip.
func TestMissing(t *testing.T) {
	for _, tc := range []struct {
		helper, reduced string
		wantFail        bool
		want            string // in the output
	}{
		{"tool", "", true, "missing a program: none of [no-such-tool-testenv /nonexistent/testenv] is installed"},
		{"tool", "0", true, "make test"},
		{"tool", "1", false, "reduced run (RPCBIND_REDUCED=1): missing a program"},
		{"file", "", true, "missing the testenv package: nothing matches [/nonexistent/*/libtestenv.so]"},
		{"file", "true", false, "reduced run"},
	} {
		t.Run(tc.helper+"/"+tc.reduced, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "skipped")
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelper$", "-test.v=true", "-test.count=1")
			cmd.Env = append(os.Environ(), envHelper+"="+tc.helper, EnvReduced+"="+tc.reduced, EnvSkipLog+"="+log)
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tc.wantFail {
				t.Errorf("failed=%v, want %v:\n%s", failed, tc.wantFail, out)
			}
			if !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "reached the end") {
				t.Errorf("output lacks %q or went on:\n%s", tc.want, out)
			}
			b, _ := os.ReadFile(log)
			switch {
			case tc.wantFail && len(b) != 0:
				t.Errorf("a failing run logged a skip: %q", b)
			case !tc.wantFail && (strings.Count(string(b), "\n") != 1 || !strings.HasPrefix(string(b), "TestHelper: ")):
				t.Errorf("skip log %q, want one line \"TestHelper: ...\"", b)
			}
		})
	}
}

func TestToolFound(t *testing.T) {
	if p := Tool(t, "/nonexistent/sh", "sh"); !strings.HasSuffix(p, "/sh") {
		t.Errorf("Tool(sh) = %q", p)
	}
	self, _ := os.Executable()
	if p := Tool(t, self); p != self {
		t.Errorf("Tool(%s) = %q", self, p)
	}
}

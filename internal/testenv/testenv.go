package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Environment variables.
const (
	// EnvReduced set to 1 (or true) turns a missing requirement into a
	// skip.
	EnvReduced = "RPCBIND_REDUCED"
	// EnvSkipLog names a file that collects the skips of a reduced run,
	// one line each ("TestName: reason").
	EnvSkipLog = "RPCBIND_SKIPLOG"
)

// Hint is appended to every failure: how to get a machine that has it all.
const Hint = "`make test` as root installs the packages of .ci/deps; RPCBIND_REDUCED=1 (`make test-reduced`) skips instead"

// maxLogLine bounds a skip-log line: one write(2) with O_APPEND, so that the
// lines of parallel test binaries never interleave.
const maxLogLine = 512

// Reduced reports whether a reduced run was asked for.
func Reduced() bool {
	v := os.Getenv(EnvReduced)
	return v == "1" || v == "true"
}

// Missing stops t because what is missing: t fails, unless the run is
// reduced, in which case t is skipped and the skip is logged.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	what := fmt.Sprintf(format, args...)
	if !Reduced() {
		t.Fatalf("testenv: missing %s (%s)", what, Hint)
	}
	logSkip(t.Name() + ": " + what)
	t.Skipf("testenv: reduced run (%s=1): missing %s", EnvReduced, what)
}

// logSkip appends line to the file named by RPCBIND_SKIPLOG, if any.
func logSkip(line string) {
	p := os.Getenv(EnvSkipLog)
	if p == "" {
		return
	}
	line = strings.ReplaceAll(line, "\n", " ")
	if len(line) > maxLogLine-1 {
		line = line[:maxLogLine-1]
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	f.WriteString(line + "\n")
}

// Tool returns the path of the first candidate that is installed: a name is
// looked up in $PATH, a path must be an executable file. Missing otherwise.
func Tool(t testing.TB, candidates ...string) string {
	t.Helper()
	if p := findTool(candidates); p != "" {
		return p
	}
	Missing(t, "a program: none of %v is installed", candidates)
	return ""
}

func findTool(candidates []string) string {
	for _, c := range candidates {
		if strings.ContainsRune(c, '/') {
			if st, err := os.Stat(c); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return c
			}
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	return ""
}

// File returns the first existing path matched by one of the glob patterns
// (a package's library or plugin); what names it in the failure.
func File(t testing.TB, what string, patterns ...string) string {
	t.Helper()
	for _, p := range patterns {
		if m, _ := filepath.Glob(p); len(m) > 0 {
			return m[0]
		}
	}
	Missing(t, "%s: nothing matches %v", what, patterns)
	return ""
}

// Root requires an effective uid of 0 (namespaces, port 111, other uids).
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "root (%s)", why)
	}
}

package systemd

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDebVersion runs debian/version.sh (make deb's version) over a
// scratch repository through untagged commits, a clock that goes back,
// tags, a pre-release tag and a dirty tree: each version is valid for dpkg
// and higher than the one before, so every build upgrades the last.
func TestDebVersion(t *testing.T) {
	for _, tool := range []string{"git", "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s missing: make deb runs on Debian with git", tool)
		}
	}
	script, err := filepath.Abs("debian/version.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t",
		"GIT_COMMITTER_EMAIL=t@t", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_SYSTEM=/dev/null")
	run := func(extra []string, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = dir, append(env, extra...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run(nil, "git", "init", "-q")
	n := 0
	commit := func(date string) string { // returns the 12-digit hash
		n++
		if err := os.WriteFile(filepath.Join(dir, "f"), []byte(strings.Repeat("x", n)), 0o644); err != nil {
			t.Fatal(err)
		}
		d := []string{"GIT_AUTHOR_DATE=" + date, "GIT_COMMITTER_DATE=" + date}
		run(d, "git", "add", "f")
		run(d, "git", "commit", "-q", "-m", "c")
		return run(nil, "git", "rev-parse", "--short=12", "HEAD")
	}
	steps := []struct {
		name string
		do   func() string // changes the repository, returns the version wanted
	}{
		{"first commit", func() string { h := commit("2026-01-02T03:04:05Z"); return "0.0~git1.20260102." + h }},
		{"second commit", func() string { h := commit("2026-01-03T00:00:00Z"); return "0.0~git2.20260103." + h }},
		{"clock went back", func() string { h := commit("2025-12-31T23:00:00Z"); return "0.0~git3.20251231." + h }},
		{"tag v0.1.0", func() string { run(nil, "git", "tag", "v0.1.0"); return "0.1.0" }},
		{"after the tag", func() string { h := commit("2026-01-04T00:00:00Z"); return "0.1.0+git1." + h }},
		{"pre-release tag", func() string {
			commit("2026-01-05T00:00:00Z")
			run(nil, "git", "tag", "-a", "-m", "rc", "v0.2.0-rc1")
			return "0.2.0~rc1"
		}},
		{"release", func() string { commit("2026-01-06T00:00:00Z"); run(nil, "git", "tag", "v0.2.0"); return "0.2.0" }},
		{"dirty tree", func() string {
			if err := os.WriteFile(filepath.Join(dir, "f"), []byte("changed"), 0o644); err != nil {
				t.Fatal(err)
			}
			return "0.2.0+dirty"
		}},
		{"not a version tag", func() string {
			run(nil, "git", "checkout", "-q", "--", "f")
			h := commit("2026-01-07T00:00:00Z")
			run(nil, "git", "tag", "release-3")
			return "0.2.0+git1." + h
		}},
	}
	prev := ""
	for _, s := range steps {
		want := s.do()
		got := run(nil, script)
		if got != want {
			t.Errorf("%s: version %q, want %q", s.name, got, want)
		}
		if !regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`).MatchString(got) {
			t.Errorf("%s: %q is not a valid Debian upstream version without revision", s.name, got)
		}
		if err := exec.Command("dpkg", "--validate-version", got).Run(); err != nil {
			t.Errorf("%s: dpkg --validate-version %q: %v", s.name, got, err)
		}
		if prev != "" {
			if err := exec.Command("dpkg", "--compare-versions", got, "gt", prev).Run(); err != nil {
				t.Errorf("%s: %q does not sort above the previous %q", s.name, got, prev)
			}
		}
		t.Logf("%-16s %s", s.name, got)
		prev = got
	}
}

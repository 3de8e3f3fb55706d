package doccheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/daemon"
	"github.com/openrpcbind/rpcbind/internal/testenv"
)

// root is the module's directory, from this package's.
const root = "../.."

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section returns the README section whose "## " heading begins with
// title, up to the next "## " heading.
func section(t *testing.T, readme, title string) string {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "\n## "+title)
	if !ok {
		t.Fatalf("README.md has no section %q", title)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// packages lists the module's package directories, relative to the root.
func packages(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command(testenv.Tool(t, "go", "/usr/local/go/bin/go"), "list", "-f", "{{.Dir}}", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	var rel []string
	for _, d := range strings.Fields(string(out)) {
		r, err := filepath.Rel(abs, d)
		if err != nil {
			t.Fatal(err)
		}
		rel = append(rel, r)
	}
	if len(rel) < 10 {
		t.Fatalf("go list found only %v", rel)
	}
	return rel
}

// TestLayoutListsEveryPackage: README's Layout names each package
// directory (as "internal/guard", "xdr/", ...), and names none that is gone.
func TestLayoutListsEveryPackage(t *testing.T) {
	layout := section(t, read(t, "README.md"), "Layout")
	pkgs := packages(t)
	for _, p := range pkgs {
		if !regexp.MustCompile(`(^|[\s,(])` + regexp.QuoteMeta(p) + `/?([\s,):]|$)`).MatchString(layout) {
			t.Errorf("README.md Layout does not list the package %s", p)
		}
	}
	for _, m := range regexp.MustCompile(`(?:^|[\s,(])((?:internal|cmd)/[a-z0-9]+)`).FindAllStringSubmatch(layout, -1) {
		if !slices.Contains(pkgs, m[1]) {
			if _, err := os.Stat(filepath.Join(root, m[1])); err != nil {
				t.Errorf("README.md Layout lists %s, which does not exist", m[1])
			}
		}
	}
}

// TestMakeHelpListsEveryTarget: every target with a "## " description,
// and every .PHONY target, is in `make help` (names with digits included:
// e2e-nspawn).
func TestMakeHelpListsEveryTarget(t *testing.T) {
	makeTool := testenv.Tool(t, "make")
	mk := read(t, "Makefile")
	cmd := exec.Command(makeTool, "-s", "--no-print-directory", "help")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make help: %v", err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			listed[f[0]] = true
		}
	}
	var targets []string
	for _, m := range regexp.MustCompile(`(?m)^([^\s:#=]+):[^=\n]*## `).FindAllStringSubmatch(mk, -1) {
		targets = append(targets, m[1])
	}
	if m := regexp.MustCompile(`(?m)^\.PHONY:(.*)$`).FindStringSubmatch(mk); m != nil {
		targets = append(targets, strings.Fields(m[1])...)
	}
	if !slices.Contains(targets, "e2e-nspawn") {
		t.Errorf("no e2e-nspawn target found in the Makefile; targets %v", targets)
	}
	slices.Sort(targets)
	for _, tg := range slices.Compact(targets) {
		if !listed[tg] {
			t.Errorf("make help does not list %s:\n%s", tg, out)
		}
	}
}

// TestQuickStart: the Quick start names the Go release go.mod asks for,
// says that the first build downloads modules, and its make commands are
// targets of the Makefile; `make test` runs the real-systemd test and
// installs the packages of .ci/deps.
func TestQuickStart(t *testing.T) {
	readme := read(t, "README.md")
	qs := section(t, readme, "Quick start")
	goVer := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(read(t, "go.mod"))
	if goVer == nil {
		t.Fatal("go.mod has no go line")
	}
	for _, want := range []string{"Go " + goVer[1], "go" + goVer[1] + ".linux-amd64.tar.gz", "1.19", "downloads the Go modules", ".ci/deps", "RPCBIND_REDUCED=1"} {
		if !strings.Contains(qs, want) {
			t.Errorf("Quick start does not say %q", want)
		}
	}
	mk := read(t, "Makefile")
	for _, m := range regexp.MustCompile(`(?m)^    (?:sudo )?make ([a-z0-9-]+)`).FindAllStringSubmatch(qs, -1) {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(m[1]) + `:`).MatchString(mk) {
			t.Errorf("Quick start runs make %s, which the Makefile lacks", m[1])
		}
	}
	for _, want := range []string{"    make run\n", "    make test\n"} {
		if !strings.Contains(qs, want) {
			t.Errorf("Quick start lacks the command %q", strings.TrimSpace(want))
		}
	}
	testRecipe := regexp.MustCompile(`(?ms)^test:.*?\n\n`).FindString(mk)
	for _, want := range []string{".ci/deps", "mod download", "RPCBIND_NSPAWN=1", "-race", "./..."} {
		if !strings.Contains(testRecipe, want) {
			t.Errorf("make test does not run %q:\n%s", want, testRecipe)
		}
	}
}

// TestDepsListedOnce: .ci/run installs through .ci/deps and keeps no list
// of its own; .ci/deps lists the reference and the tools the tests ask for.
func TestDepsListedOnce(t *testing.T) {
	run := read(t, ".ci/run")
	if strings.Contains(run, "apt-get install") || !strings.Contains(run, ".ci/deps") {
		t.Errorf(".ci/run must install through .ci/deps only")
	}
	if !strings.Contains(run, "go mod tidy -diff") {
		t.Errorf(".ci/run does not check go mod tidy -diff")
	}
	out, err := exec.Command(filepath.Join(root, ".ci/deps"), "--list").Output()
	if err != nil {
		t.Fatalf(".ci/deps --list: %v", err)
	}
	list := strings.Fields(string(out))
	for _, p := range []string{"rpcbind", "libtirpc-dev", "nfs-common", "nfs-ganesha-mem", "libwrap0", "debootstrap", "systemd-container", "gcc", "make", "iproute2"} {
		if !slices.Contains(list, p) {
			t.Errorf(".ci/deps --list lacks %s: %v", p, list)
		}
	}
}

// TestDebianFlags: README's table of Debian's flags has exactly the
// letters of the reference's usage line (`usage: rpcbind [-adhilswfr]`);
// Debian's 1.2.6 rejects -v.
func TestDebianFlags(t *testing.T) {
	cl := section(t, read(t, "README.md"), "Command line")
	var got []string
	for _, m := range regexp.MustCompile("(?m)^\\| `-([a-z])").FindAllStringSubmatch(cl, -1) {
		got = append(got, m[1])
	}
	u := regexp.MustCompile(`\[-([a-z]+)\]`).FindStringSubmatch(daemon.Usage)
	want := strings.Split(u[1], "")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("README.md lists the flags %v, the reference's usage line %v", got, want)
	}
}

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/nstest"
	"github.com/openrpcbind/rpcbind/internal/testenv"
)

// CmdTimeout bounds one command of a script; libtirpc's own total timeout is
// 60 s, so a command that hangs this long has met a daemon that never answers.
const CmdTimeout = 30 * time.Second

// Impl is an rpcbind implementation to run: the reference first, then ours.
type Impl struct {
	Name string // "reference" or "ours"
	Path string
	Args []string
}

// Env is what a test inside the namespaces works with.
type Env struct {
	Impls  []Impl // Impls[0] is the reference
	Client string // path of the built tirpcclient
}

// DaemonArgs are the flags both daemons run with: Debian's unit passes -f
// and /etc/default/rpcbind adds -w.
var DaemonArgs = []string{"-f", "-w"}

// Enter builds the binaries (once per test binary, outside the namespaces)
// and then behaves as nstest.Enter: false means the test already ran in a
// child and the caller must return; true means the caller is inside.
func Enter(t *testing.T) (*Env, bool) {
	t.Helper()
	if !nstest.Inside() {
		testenv.Root(t, "e2e: network and mount namespaces")
		buildOnce.Do(func() { buildErr = build() })
		if buildErr != nil {
			t.Fatal(buildErr)
		}
	}
	if !nstest.Enter(t) {
		return nil, false
	}
	e := &Env{
		Impls:  []Impl{{Name: "reference", Path: nstest.ReferenceRpcbind(t), Args: DaemonArgs}},
		Client: os.Getenv(EnvClient),
	}
	p := os.Getenv(EnvOurs)
	if p == "" {
		t.Fatal("e2e: our daemon was not built")
	}
	e.Impls = append(e.Impls, Impl{Name: "ours", Path: p, Args: DaemonArgs})
	if e.Client == "" {
		t.Fatal("e2e: tirpcclient was not built")
	}
	return e, true
}

// Start gives impl a fresh /run and starts it, waiting for its sockets.
func (e *Env) Start(t testing.TB, impl Impl) *nstest.Daemon {
	t.Helper()
	nstest.FreshRun(t)
	return nstest.StartDaemonNamed(t, impl.Name, impl.Path, impl.Args...)
}

// ForEach runs fn as a subtest per implementation, each on a fresh /run with
// its daemon started, and stops the daemon (SIGTERM) afterwards.
func (e *Env) ForEach(t *testing.T, fn func(t *testing.T, impl Impl, d *nstest.Daemon)) {
	t.Helper()
	for _, impl := range e.Impls {
		t.Run(impl.Name, func(t *testing.T) {
			d := e.Start(t, impl)
			fn(t, impl, d)
			if err := d.Stop(syscall.SIGTERM); err != nil {
				t.Errorf("%s: exit after SIGTERM: %v", impl.Name, err)
			}
		})
	}
}

// Result is what one command did.
type Result struct {
	Cmd    string
	Stdout string
	Stderr string
	Exit   int // -1: killed after CmdTimeout
}

func (r Result) String() string {
	return fmt.Sprintf("$ %s\n[exit %d]\n--- stdout\n%s--- stderr\n%s", r.Cmd, r.Exit, r.Stdout, r.Stderr)
}

// Run runs one command line: words split on blanks; the word "tirpcclient"
// names the built client; a leading "@user" runs it as that user (e.g.
// "@nobody tirpcclient set 300000 1 tcp 0.0.0.0.3.232").
func (e *Env) Run(t testing.TB, line string) Result {
	t.Helper()
	return e.run(t, line, "")
}

// run is Run; a non-empty rpcinfo is the rpcinfo binary to execute when the
// command is "rpcinfo", with argv[0] still "rpcinfo" so that getopt's
// messages name the program the same way for every binary.
func (e *Env) run(t testing.TB, line, rpcinfo string) Result {
	t.Helper()
	words := strings.Fields(line)
	var cred *syscall.Credential
	if len(words) > 0 && strings.HasPrefix(words[0], "@") {
		u, err := user.Lookup(words[0][1:])
		if err != nil {
			t.Fatalf("e2e: %q: %v", line, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}
		words = words[1:]
	}
	if len(words) == 0 {
		t.Fatalf("e2e: empty command %q", line)
	}
	prog, argv0 := words[0], ""
	switch {
	case prog == "tirpcclient":
		prog = e.Client
	case prog == "rpcinfo" && rpcinfo != "":
		prog, argv0 = rpcinfo, "rpcinfo"
	}
	ctx, cancel := context.WithTimeout(context.Background(), CmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, words[1:]...)
	if argv0 != "" {
		cmd.Args[0] = argv0
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := Result{Cmd: line, Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.Exit = -1
		r.Stderr += fmt.Sprintf("[killed after %v]\n", CmdTimeout)
	case errors.As(err, &ee):
		r.Exit = ee.ExitCode()
	case err != nil:
		t.Fatalf("e2e: run %q: %v", line, err)
	}
	return r
}

// Outcome is one implementation's run of a script.
type Outcome struct {
	Impl    Impl
	Steps   []Result
	Stop    string            // exit status after SIGTERM
	Files   map[string]string // warm-start files after the stop: mode, owner, hex
	Journal string            // the daemon's own stdout+stderr (Said: without our start line)
}

// Said is what the stopped daemon d, an instance of impl, wrote, ready to
// be compared with the reference's output: our daemon's start line
// ("rpcbind: serving ...", nstest.StartLinePrefix), which Debian's daemon
// does not log, is removed — exactly that one line, nothing else. Said
// fails t unless ours logged it exactly once and the reference never.
func Said(t testing.TB, impl Impl, d *nstest.Daemon) string {
	t.Helper()
	out, n := nstest.WithoutStartLines(d.Output())
	want := 1
	if impl.Name == "reference" {
		want = 0
	}
	if n != want {
		t.Errorf("%s logged %d start lines (%q...), want %d:\n%s", impl.Name, n, nstest.StartLinePrefix, want, d.Output())
	}
	return out
}

// Restart as a script line stops the daemon with SIGTERM and starts it again
// on the same /run (its step's stdout is the exit status).
const Restart = "!restart"

// RunScript starts impl on a fresh /run, runs the script, stops the daemon
// with SIGTERM and collects what it left in /run/rpcbind.
func (e *Env) RunScript(t testing.TB, impl Impl, script []string) Outcome {
	t.Helper()
	d := e.Start(t, impl)
	o := Outcome{Impl: impl, Files: map[string]string{}}
	for _, line := range script {
		if line == Restart {
			// Stop and start on the same /run: the warm-start path.
			r := Result{Cmd: line, Stdout: fmt.Sprintln(d.Stop(syscall.SIGTERM))}
			o.Journal += Said(t, impl, d)
			d = nstest.StartDaemonNamed(t, impl.Name, impl.Path, impl.Args...)
			o.Steps = append(o.Steps, r)
			continue
		}
		o.Steps = append(o.Steps, e.Run(t, line))
	}
	o.Stop = fmt.Sprint(d.Stop(syscall.SIGTERM))
	o.Journal += Said(t, impl, d)
	ents, _ := os.ReadDir(nstest.RPCBindDir)
	for _, ent := range ents {
		o.Files[ent.Name()] = describeFile(filepath.Join(nstest.RPCBindDir, ent.Name()))
	}
	return o
}

func describeFile(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return err.Error()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	owner := ""
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		owner = fmt.Sprintf(" uid=%d gid=%d", st.Uid, st.Gid)
	}
	return fmt.Sprintf("mode=%v%s size=%d\n%s", fi.Mode(), owner, len(b), hexLines(b))
}

// hexLines formats b as 16 bytes per line, so that diffs point at offsets.
func hexLines(b []byte) string {
	var sb strings.Builder
	for i := 0; i < len(b); i += 16 {
		j := min(i+16, len(b))
		fmt.Fprintf(&sb, "%04x: % x\n", i, b[i:j])
	}
	return sb.String()
}

// Compare runs the script against every implementation and fails t where
// ours differs from the reference: each command's stdout, stderr and exit
// status, the exit status after SIGTERM, the warm-start files and the
// daemon's own output. It returns the outcomes (reference first).
func (e *Env) Compare(t testing.TB, script ...string) []Outcome {
	t.Helper()
	var outs []Outcome
	for _, impl := range e.Impls {
		outs = append(outs, e.RunScript(t, impl, script))
	}
	ref := outs[0]
	for i, r := range ref.Steps {
		t.Logf("reference:\n%s", r)
		if r.Exit == -1 {
			t.Errorf("reference timed out on %q", r.Cmd)
		}
		for _, o := range outs[1:] {
			if got := o.Steps[i]; got != r {
				t.Errorf("%s differs from the reference on step %d:\n%s", o.Impl.Name, i+1, resultDiff(r, got))
			}
		}
	}
	for _, o := range outs[1:] {
		if o.Stop != ref.Stop {
			t.Errorf("%s: status after SIGTERM %s, reference %s", o.Impl.Name, o.Stop, ref.Stop)
		}
		if o.Journal != ref.Journal {
			t.Errorf("%s: daemon output differs (- reference, + ours):\n%s", o.Impl.Name, lineDiff(ref.Journal, o.Journal))
		}
		for name, want := range ref.Files {
			if got, ok := o.Files[name]; !ok {
				t.Errorf("%s: no %s/%s after SIGTERM", o.Impl.Name, nstest.RPCBindDir, name)
			} else if got != want {
				t.Errorf("%s: %s differs (- reference, + ours):\n%s", o.Impl.Name, name, lineDiff(want, got))
			}
		}
		for name := range o.Files {
			if _, ok := ref.Files[name]; !ok {
				t.Logf("%s: also left %s/%s (the reference does not)", o.Impl.Name, nstest.RPCBindDir, name)
			}
		}
	}
	return outs
}

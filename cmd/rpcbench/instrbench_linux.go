//go:build linux

package main

// The driver of make bench-instructions (rpcbench instr-bench): user-space
// instructions and syscalls per call, ours against the reference, on the
// same method (issue 13). It re-executes itself as "instr-ns" under
// unshare(1) in private network, mount and pid namespaces, where it brings
// lo up, mounts a tmpfs on /run and, for every workload × gap × daemon:
//
//   - instructions: starts the daemon under valgrind --tool=cachegrind
//     (GODEBUG=cpu.rdtscp=off: Go's start-up otherwise stops valgrind;
//     callgrind aborts on Go's signal handling) three times, making N, 2N
//     and 3N calls (instr-client, in process) between its start and its
//     SIGTERM, and writes each run's total Ir. The slope of the totals over
//     the calls is the cost per call; start-up, preload and exit are in the
//     intercept, as long as they are the same in every run (every run starts
//     from an empty /run, so the warm-start file of the last one is gone).
//   - syscalls: starts the daemon natively once and, for N, 2N and 3N
//     calls, attaches perf trace -s (strace -f -c when perf is missing) to
//     all its threads for the calls only, and writes each window's counts by
//     syscall name; again the slope is the cost per call.
//
// Our daemon runs with GOGC=off (-gogc): at its own GOGC=25 a collection
// comes every ~18,000 calls and lands in one run of three or not, which
// made NULL UDP with a gap ±8,000 instructions per call; measured apart,
// 3 collections in 36,000 back-to-back GETPORTs cost 1.8M instructions,
// about 50 per call. Allocation itself (mallocgc) is still counted.
//
// With a gap the client waits that long after each reply, so the daemon
// goes idle and wakes for every call; the cachegrind lines carry the
// daemon's CPU time over the wall time of the calls, which says whether it
// did (under valgrind it runs 20–50× slower).
//
// Every daemon run, the namespace run and the whole bench are bounded in
// time; the top level kills the namespace's process group at its end.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Bounds of the instructions bench.
const (
	instrNSTimeout    = 30 * time.Minute // the whole namespace run
	instrStartMax     = 60 * time.Second // a daemon under valgrind listening
	instrStopMax      = 60 * time.Second // a daemon under valgrind exiting and writing its counts
	instrSettle       = 200 * time.Millisecond
	instrAttachWait   = 300 * time.Millisecond // after the tracer holds its events, for it to enable them
	instrTracerStop   = 30 * time.Second
	instrProfileMin   = 20 // instructions per call below which a function is not listed
	instrProfileFuncs = 15 // functions listed per profile
	instrDir          = "/run/instr"
)

// instrWorkload is one row of the table.
type instrWorkload struct {
	name, proc, proto string
	preload           int
	dump              bool // N is -n-dump, whatever the gap
}

var instrWorkloads = []instrWorkload{
	{name: "null-udp", proc: "null", proto: "udp"},
	{name: "getport-udp", proc: "getport", proto: "udp"},
	{name: "getaddr-udp", proc: "getaddr", proto: "udp"},
	{name: "null-tcp", proc: "null", proto: "tcp"},
	{name: "getport-tcp", proc: "getport", proto: "tcp"},
	{name: "getaddr-tcp", proc: "getaddr", proto: "tcp"},
	{name: "dump2-tcp-r1000", proc: "dump2", proto: "tcp", preload: 1000, dump: true},
}

// instrProfiled: the rows whose per-function profile is written.
var instrProfiled = map[string]bool{"getport-udp/1ms": true, "getaddr-udp/1ms": true, "getport-tcp/1ms": true}

type instrOpts struct {
	nGap, nB2B, nDump int
	gap               time.Duration
	workloads, tools  string
	tracer            string
	keep              string // directory the cachegrind out files are copied to
	gogc              string // GOGC for our daemon ("": its own default)
}

func (o *instrOpts) register(fs *flag.FlagSet) {
	fs.IntVar(&o.nGap, "n", 800, "N for the runs with a gap (runs of N, 2N, 3N calls)")
	fs.IntVar(&o.nB2B, "n-b2b", 4000, "N for the back-to-back runs")
	fs.IntVar(&o.nDump, "n-dump", 200, "N for DUMP (with and without a gap)")
	fs.DurationVar(&o.gap, "gap", time.Millisecond, "pause after each reply in the gap runs")
	names := make([]string, len(instrWorkloads))
	for i, w := range instrWorkloads {
		names[i] = w.name
	}
	fs.StringVar(&o.workloads, "workloads", strings.Join(names, ","), "rows to measure, comma-separated")
	fs.StringVar(&o.tools, "tools", "cachegrind,syscalls", "what to measure: cachegrind, syscalls")
	fs.StringVar(&o.keep, "keep", "", "copy the cachegrind out files to this directory (absolute, outside /run) for cg_annotate and cg_diff")
	fs.StringVar(&o.gogc, "gogc", "off", "GOGC for our daemon during the bench (\"\": the daemon's own, 25): a collection every ~18,000 calls costs millions of instructions at once, which three runs cannot average")
	fs.StringVar(&o.tracer, "tracer", "", "syscall counter: perf (perf trace -s) or strace (default: perf if installed)")
}

func (o *instrOpts) args() []string {
	return []string{"-n", strconv.Itoa(o.nGap), "-n-b2b", strconv.Itoa(o.nB2B), "-n-dump", strconv.Itoa(o.nDump),
		"-gap", o.gap.String(), "-workloads", o.workloads, "-tools", o.tools, "-tracer", o.tracer, "-keep", o.keep, "-gogc", o.gogc}
}

func (o *instrOpts) check() error {
	for _, n := range []int{o.nGap, o.nB2B, o.nDump} {
		if n < 1 || 3*n > instrMaxCalls {
			return fmt.Errorf("instr-bench: N %d: want 1..%d", n, instrMaxCalls/3)
		}
	}
	if o.gap <= 0 || o.gap > instrMaxGap {
		return fmt.Errorf("instr-bench: -gap %s: want (0, %s]", o.gap, instrMaxGap)
	}
	known := map[string]bool{}
	for _, w := range instrWorkloads {
		known[w.name] = true
	}
	for _, w := range strings.Split(o.workloads, ",") {
		if !known[w] {
			return fmt.Errorf("instr-bench: unknown workload %q", w)
		}
	}
	if o.keep != "" && (!filepath.IsAbs(o.keep) || strings.HasPrefix(filepath.Clean(o.keep), "/run")) {
		return fmt.Errorf("instr-bench: -keep %q: want an absolute path outside /run", o.keep)
	}
	if o.tracer == "" {
		o.tracer = "strace"
		if _, err := exec.LookPath("perf"); err == nil {
			o.tracer = "perf"
		}
	}
	if o.tracer != "perf" && o.tracer != "strace" {
		return fmt.Errorf("instr-bench: -tracer %q: want perf or strace", o.tracer)
	}
	need := []string{o.tracer, "unshare", "ip"}
	if strings.Contains(o.tools, "cachegrind") {
		need = append(need, "valgrind")
	}
	for _, c := range need {
		if _, err := exec.LookPath(c); err != nil {
			return fmt.Errorf("instr-bench: %s not found (make deps installs it)", c)
		}
	}
	return nil
}

// instrBenchMain is "rpcbench instr-bench": both daemons, the raw lines,
// the table.
func instrBenchMain(args []string) error {
	var o instrOpts
	var ours, ref, out string
	fs := flag.NewFlagSet("instr-bench", flag.ExitOnError)
	fs.StringVar(&ours, "ours", "bin/rpcbind", "our daemon")
	fs.StringVar(&ref, "ref", "/usr/sbin/rpcbind", "the reference daemon")
	fs.StringVar(&out, "out", "", "write the raw lines to this file")
	o.register(fs)
	fs.Parse(args)
	if err := o.check(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("instr-bench: needs root (namespaces, daemons on port 111)")
	}
	killOnSignal()
	if o.keep != "" {
		if err := os.MkdirAll(o.keep, 0o755); err != nil {
			return err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if ours, err = filepath.Abs(ours); err != nil {
		return err
	}
	start := time.Now()
	header := fmt.Sprintf("# bench-instructions %s, %d CPUs (%s), load %s, %s, tracer %s; N=%d with a %s gap (syscalls: N/2), N=%d back to back, N=%d for DUMP; runs of N, 2N, 3N calls; ours with GOGC=%q",
		time.Now().UTC().Format("2006-01-02"), cpuCount(), cpuModel(), loadAvg(), valgrindVersion(), o.tracer, o.nGap, o.gap, o.nB2B, o.nDump, o.gogc)
	fmt.Println(header)
	lines, err := runInstrNamespace(self, ours, ref, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "instr-bench: %v\n", err)
	}
	footer := fmt.Sprintf("# took %s", time.Since(start).Round(time.Second))
	if out != "" {
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		body := header + "\n" + strings.Join(lines, "\n") + "\n" + footer + "\n"
		if err := os.WriteFile(out, []byte(body), 0o644); err != nil {
			return err
		}
		fmt.Println("raw lines:", out)
	}
	fmt.Println(footer)
	fmt.Println()
	if rerr := instrReport(strings.NewReader(strings.Join(lines, "\n")), os.Stdout); rerr != nil {
		return rerr
	}
	return err
}

func valgrindVersion() string {
	b, err := exec.Command("valgrind", "--version").Output()
	if err != nil {
		return "no valgrind"
	}
	return strings.TrimSpace(string(b))
}

// runInstrNamespace runs instr-ns under unshare (runUnshared).
func runInstrNamespace(self, ours, ref string, o instrOpts) ([]string, error) {
	return runUnshared(instrNSTimeout, append([]string{self, "instr-ns", "-ours", ours, "-ref", ref,
		"-outer-ns", outerNS()}, o.args()...))
}

// instrNS is the state of instr-ns.
type instrNS struct {
	o       instrOpts
	daemons [][2]string // name, path
}

// instrNSMain is "rpcbench instr-ns", inside the private namespaces.
func instrNSMain(args []string) error {
	var x instrNS
	var ours, ref string
	fs := flag.NewFlagSet("instr-ns", flag.ExitOnError)
	fs.StringVar(&ours, "ours", "", "our daemon")
	fs.StringVar(&ref, "ref", "", "the reference daemon")
	outer := fs.String("outer-ns", "", "instr-bench's namespaces (net:[…],mnt:[…])")
	x.o.register(fs)
	fs.Parse(args)
	if err := x.o.check(); err != nil {
		return err
	}
	if err := mustBePrivateNS(*outer); err != nil {
		return err
	}
	if err := runCmd("ip", "link", "set", "lo", "up"); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", "/run", "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("instr-ns: mount /run: %w", err)
	}
	defer unix.Unmount("/run", unix.MNT_DETACH)
	if _, err := ensureRPCUser(); err != nil {
		return err
	}
	// The daemons drop to _rpc before they exit, when cachegrind writes.
	if err := os.MkdirAll(instrDir, 0o777); err != nil {
		return err
	}
	if err := os.Chmod(instrDir, 0o1777); err != nil {
		return err
	}
	x.daemons = [][2]string{{"ours", ours}, {"reference", ref}}
	want := map[string]bool{}
	for _, w := range strings.Split(x.o.workloads, ",") {
		want[w] = true
	}
	failed := 0
	for _, w := range instrWorkloads {
		if !want[w.name] {
			continue
		}
		for _, gap := range []time.Duration{x.o.gap, 0} {
			for _, d := range x.daemons {
				if err := x.cell(d, w, gap); err != nil {
					failed++
					fmt.Fprintf(os.Stderr, "instr-ns: %s %s gap %s: %v\n", d[0], w.name, gap, err)
				}
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("instr-ns: %d cells failed", failed)
	}
	return nil
}

func gapName(gap time.Duration) string {
	if gap == 0 {
		return "b2b"
	}
	return gap.String()
}

// cell measures one daemon on one workload with one gap.
func (x *instrNS) cell(d [2]string, w instrWorkload, gap time.Duration) error {
	n := x.o.nB2B
	if gap > 0 {
		n = x.o.nGap
	}
	if w.dump {
		n = x.o.nDump
	}
	prefix := fmt.Sprintf("daemon=%s workload=%s gap=%s", d[0], w.name, gapName(gap))
	cc := instrClientConfig{addr: "127.0.0.1:111", proto: w.proto, proc: w.proc, gap: gap, timeout: instrTimeout}
	var errs []error
	if strings.Contains(x.o.tools, "cachegrind") {
		files := map[int]string{}
		for k := 1; k <= 3; k++ {
			out := filepath.Join(instrDir, fmt.Sprintf("cg-%s-%s-%s-%d.out", d[0], w.name, gapName(gap), k))
			cc.n = k * n
			cc.preload = w.preload
			ir, stat, err := x.cachegrindRun(d[0], d[1], out, cc)
			if err != nil {
				errs = append(errs, fmt.Errorf("cachegrind %d calls: %w", cc.n, err))
				break
			}
			files[k] = out
			fmt.Printf("%s tool=cachegrind n=%d ir=%d wall_ms=%.1f cpu_ms=%.0f rtt_p50_us=%d\n", prefix, cc.n, ir,
				float64(stat.wall.Microseconds())/1000, float64(stat.cpu.Milliseconds()), stat.rtt.Microseconds())
		}
		if instrProfiled[w.name+"/"+gapName(gap)] && files[1] != "" && files[3] != "" {
			if err := printProfile(prefix, files[1], files[3], 2*n); err != nil {
				errs = append(errs, err)
			}
		}
		for _, f := range files {
			if x.o.keep != "" {
				if b, err := os.ReadFile(f); err == nil {
					os.WriteFile(filepath.Join(x.o.keep, filepath.Base(f)), b, 0o644)
				}
			}
			os.Remove(f)
		}
	}
	if strings.Contains(x.o.tools, "syscalls") {
		// Syscall counts are exact: with a gap, windows of N/2 calls
		// are enough and save half the wall time.
		ns := n
		if gap > 0 && !w.dump {
			ns = max(1, n/2)
		}
		if err := x.syscallRuns(prefix, d[0], d[1], cc, w.preload, ns); err != nil {
			errs = append(errs, fmt.Errorf("syscalls: %w", err))
		}
	}
	return errors.Join(errs...)
}

type instrStat struct {
	wall, cpu, rtt time.Duration
}

// startDaemon starts argv from an empty /run/rpcbind and waits until it
// accepts a TCP connection on port 111 (one connection: its cost is the
// same in every run).
func startDaemon(argv []string, env []string) (*exec.Cmd, <-chan struct{}, *capped, error) {
	for _, f := range []string{"/run/rpcbind.sock", "/run/rpcbind.lock"} {
		os.Remove(f)
	}
	os.RemoveAll("/run/rpcbind")
	os.MkdirAll("/run/rpcbind", 0o755)
	if u, err := ensureRPCUser(); err == nil {
		os.Chown("/run/rpcbind", u, -1)
	}
	log := &capped{}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(instrStartMax)
	for {
		select {
		case <-exited:
			return nil, nil, nil, fmt.Errorf("daemon exited at start: %s", bytes.TrimSpace(log.bytes()))
		default:
		}
		if c, err := net.DialTimeout("tcp", "127.0.0.1:111", time.Second); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return nil, nil, nil, fmt.Errorf("daemon not listening after %s", instrStartMax)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(instrSettle)
	return cmd, exited, log, nil
}

func (c *capped) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.b...)
}

// stopDaemon sends SIGTERM and waits for the exit; past instrStopMax it
// kills the daemon and says so (its counts would be missing).
func stopDaemon(cmd *exec.Cmd, exited <-chan struct{}) error {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(instrStopMax):
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("daemon did not exit within %s of SIGTERM", instrStopMax)
	}
}

// cachegrindRun runs the daemon under cachegrind for one client run and
// returns the total instructions.
func (x *instrNS) cachegrindRun(name, daemon, out string, cc instrClientConfig) (int64, instrStat, error) {
	var st instrStat
	os.Remove(out)
	argv := []string{"valgrind", "--tool=cachegrind", "--cache-sim=no", "--vgdb=no",
		"--cachegrind-out-file=" + out, daemon, "-f", "-w"}
	env := x.env(name, true)
	cmd, exited, log, err := startDaemon(argv, env)
	if err != nil {
		return 0, st, err
	}
	pid := cmd.Process.Pid
	ctx, cancel := context.WithTimeout(context.Background(), instrNSTimeout)
	defer cancel()
	if cc.preload > 0 {
		if err := preload(ctx, cc.preload, true); err != nil {
			stopDaemon(cmd, exited)
			return 0, st, err
		}
		cc.preload = 0
	}
	before, err1 := readProc(pid)
	t0 := time.Now()
	res, err := instrCalls(ctx, cc)
	st.wall = time.Since(t0)
	after, err2 := readProc(pid)
	if err1 == nil && err2 == nil {
		st.cpu = after.cpu - before.cpu
	}
	st.rtt = res.rttP50
	serr := stopDaemon(cmd, exited)
	if err != nil {
		return 0, st, fmt.Errorf("%w\n%s", err, log.bytes())
	}
	if serr != nil {
		return 0, st, serr
	}
	f, err := os.Open(out)
	if err != nil {
		return 0, st, fmt.Errorf("cachegrind output: %w\n%s", err, log.bytes())
	}
	defer f.Close()
	total, _, err := parseCachegrindOut(f)
	return total, st, err
}

// printProfile writes the per-call profile lines: the functions and groups
// of the 3N run less those of the N run, over the 2N calls between them.
func printProfile(prefix, small, big string, calls int) error {
	read := func(p string) (map[string]int64, error) {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		_, by, err := parseCachegrindOut(f)
		return by, err
	}
	s, err := read(small)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	b, err := read(big)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	groups, fns := profileDiff(s, b, calls, instrProfileMin)
	for _, g := range groups {
		fmt.Printf("%s tool=profile kind=group name=%s ir_per_call=%.0f\n", prefix, g.name, g.perCall)
	}
	for i, f := range fns {
		if i == instrProfileFuncs {
			break
		}
		fmt.Printf("%s tool=profile kind=fn name=%s ir_per_call=%.0f\n", prefix, f.name, f.perCall)
	}
	return nil
}

// env is the daemon's environment: GODEBUG=cpu.rdtscp=off under valgrind
// (Go's start-up otherwise stops it), GOGC=-gogc for ours.
func (x *instrNS) env(name string, valgrind bool) []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "GOGC=") && !strings.HasPrefix(e, "GODEBUG=") {
			env = append(env, e)
		}
	}
	if valgrind {
		env = append(env, "GODEBUG=cpu.rdtscp=off")
	}
	if name == "ours" && x.o.gogc != "" {
		env = append(env, "GOGC="+x.o.gogc)
	}
	return env
}

// syscallRuns starts the daemon natively once and counts its syscalls over
// windows of n, 2n and 3n calls.
func (x *instrNS) syscallRuns(prefix, name, daemon string, cc instrClientConfig, preloadN, n int) error {
	cmd, exited, log, err := startDaemon([]string{daemon, "-f", "-w"}, x.env(name, false))
	if err != nil {
		return err
	}
	defer stopDaemon(cmd, exited)
	ctx, cancel := context.WithTimeout(context.Background(), instrNSTimeout)
	defer cancel()
	if preloadN > 0 {
		if err := preload(ctx, preloadN, true); err != nil {
			return err
		}
	}
	cc.preload = 0
	pid := cmd.Process.Pid
	for k := 1; k <= 3; k++ {
		cc.n = k * n
		by, err := x.traceWindow(pid, func() error {
			_, err := instrCalls(ctx, cc)
			return err
		})
		if err != nil {
			return fmt.Errorf("%d calls: %w\n%s", cc.n, err, log.bytes())
		}
		var total int64
		var parts []string
		for name, c := range by {
			total += c
			parts = append(parts, name+":"+strconv.FormatInt(c, 10))
		}
		slices.Sort(parts)
		fmt.Printf("%s tool=syscalls n=%d syscalls=%d by=%s tracer=%s\n", prefix, cc.n, total, strings.Join(parts, ","), x.o.tracer)
	}
	return nil
}

// waitAttached waits until the tracer (pid tracer) watches the daemon
// (pid daemon): perf holds perf_event descriptors, strace is the tracer of
// every thread; then instrAttachWait more, for perf to enable its events.
func waitAttached(tool string, tracer, daemon int) error {
	deadline := time.Now().Add(instrTracerStop)
	for ; time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if tool == "perf" {
			fds, _ := os.ReadDir("/proc/" + strconv.Itoa(tracer) + "/fd")
			n := 0
			for _, fd := range fds {
				if l, _ := os.Readlink("/proc/" + strconv.Itoa(tracer) + "/fd/" + fd.Name()); strings.Contains(l, "perf_event") {
					n++
				}
			}
			if n > 0 {
				time.Sleep(instrAttachWait)
				return nil
			}
			continue
		}
		tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(daemon) + "/task")
		all := len(tasks) > 0
		for _, t := range tasks {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(daemon) + "/task/" + t.Name() + "/status")
			if !strings.Contains(string(b), "TracerPid:\t"+strconv.Itoa(tracer)+"\n") {
				all = false
			}
		}
		if all {
			time.Sleep(instrAttachWait)
			return nil
		}
	}
	return fmt.Errorf("%s not attached after %s", tool, instrTracerStop)
}

// traceWindow attaches the tracer to every thread of pid, runs calls and
// detaches; it returns the syscalls counted by name.
func (x *instrNS) traceWindow(pid int, calls func() error) (map[string]int64, error) {
	out := filepath.Join(instrDir, "trace.txt")
	os.Remove(out)
	var tr *exec.Cmd
	switch x.o.tracer {
	case "perf":
		tr = exec.Command("perf", "trace", "-s", "-p", strconv.Itoa(pid), "-o", out)
	default:
		tr = exec.Command("strace", "-f", "-c", "-q", "-p", strconv.Itoa(pid), "-o", out)
	}
	log := &capped{}
	tr.Stdout, tr.Stderr = log, log
	tr.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := tr.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- tr.Wait() }()
	if err := waitAttached(x.o.tracer, tr.Process.Pid, pid); err != nil {
		tr.Process.Kill()
		<-done
		return nil, fmt.Errorf("%w: %s", err, log.bytes())
	}
	cerr := calls()
	time.Sleep(100 * time.Millisecond)
	tr.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(instrTracerStop):
		tr.Process.Kill()
		<-done
		return nil, fmt.Errorf("%s did not stop: %s", x.o.tracer, log.bytes())
	}
	if cerr != nil {
		return nil, cerr
	}
	f, err := os.Open(out)
	if err != nil {
		return nil, fmt.Errorf("%s output: %w: %s", x.o.tracer, err, log.bytes())
	}
	defer f.Close()
	var by map[string]int64
	if x.o.tracer == "perf" {
		by, err = parsePerfTrace(f)
	} else {
		by, err = parseStrace(f)
	}
	if err == nil && len(by) == 0 {
		err = fmt.Errorf("%s counted nothing: %s", x.o.tracer, log.bytes())
	}
	return by, err
}

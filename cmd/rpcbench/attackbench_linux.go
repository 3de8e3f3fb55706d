//go:build linux

package main

// The driver of make bench-attack (rpcbench attack-bench): for each daemon
// (ours, the reference) it re-executes itself as "attack-ns" under
// unshare(1) in private network and mount namespaces, where it
//
//   - brings lo up and mounts a tmpfs on /run before any daemon starts;
//   - creates the remote host: a process in a further network namespace
//     joined by a veth pair (198.18.0.1/15 and 2001:db8:a77::1/64 here;
//     160 IPv4 addresses, each in its own /24 of 198.18.0.0/15, and 16
//     IPv6 addresses of one /64 there; RFC 2544 and RFC 3849 ranges);
//   - for each phase (none, then every attack) starts the daemon afresh,
//     samples its VmRSS every 100 ms, starts the attacker (remote kinds in
//     the remote namespace through nsenter(1), slowdump as user nobody),
//     runs the victim while the attack lasts, and stops everything.
//
// Every phase and the whole run are bounded in time; the top level kills
// the process group of each namespace run at its end, so no daemon,
// attacker or placeholder outlives it, and the namespaces (with the veth
// pair) vanish with their last process.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Driver bounds and the remote host's addresses.
const (
	nsRunTimeout   = 200 * time.Second // one daemon's whole run
	readyTimeout   = 60 * time.Second  // attacker setup
	daemonStartMax = 10 * time.Second
	rssPeriod      = 100 * time.Millisecond
	remoteSrc4     = 160 // IPv4 source addresses of the remote host
	remoteSrc6     = 16  // IPv6 source addresses (one /64)
	localV4        = "198.18.0.1"
	localV6        = "2001:db8:a77::1"
	vethHere       = "atk0"
	vethThere      = "atk1"
)

// attackKinds in the order they run; "none" is the unloaded baseline.
var attackKinds = []string{"none", "getstat-udp", "getstat-tcp", "pipeline", "churn", "idle", "slowdump"}

func remoteAddrs() (v4, v6 []string) {
	for i := 0; i < remoteSrc4; i++ {
		v4 = append(v4, fmt.Sprintf("198.18.%d.2", i+1))
	}
	for i := 0; i < remoteSrc6; i++ {
		v6 = append(v6, fmt.Sprintf("2001:db8:a77::%x", 0x100+i))
	}
	return v4, v6
}

type benchOpts struct {
	secs, rssCeilMiB, rate int
	timeout                time.Duration
	attacks                string
}

func (o *benchOpts) register(fs *flag.FlagSet) {
	fs.IntVar(&o.secs, "secs", 5, "seconds of victim measurement per phase (1..60)")
	fs.IntVar(&o.rate, "rate", 200, "victim probes per second per transport")
	fs.DurationVar(&o.timeout, "timeout", time.Second, "victim probe timeout (counted as a loss)")
	fs.IntVar(&o.rssCeilMiB, "rss-ceiling", 1024, "MiB of daemon RSS at which an attack is stopped (machine safety)")
	fs.StringVar(&o.attacks, "attacks", strings.Join(attackKinds[1:], ","), "attacks to run, comma-separated")
}

func (o *benchOpts) args() []string {
	return []string{"-secs", strconv.Itoa(o.secs), "-rate", strconv.Itoa(o.rate), "-timeout", o.timeout.String(),
		"-rss-ceiling", strconv.Itoa(o.rssCeilMiB), "-attacks", o.attacks}
}

// attackBenchMain is "rpcbench attack-bench": both daemons, the table.
func attackBenchMain(args []string) error {
	var o benchOpts
	var ours, ref, out string
	fs := flag.NewFlagSet("attack-bench", flag.ExitOnError)
	fs.StringVar(&ours, "ours", "bin/rpcbind", "our daemon")
	fs.StringVar(&ref, "ref", "/usr/sbin/rpcbind", "the reference daemon")
	fs.StringVar(&out, "out", "", "write the raw lines to this file")
	nice := fs.Int("nice", 0, "niceness of the whole run (daemons, victim, attackers; negative on a busy machine)")
	o.register(fs)
	fs.Parse(args)
	if *nice != 0 {
		if err := unix.Setpriority(unix.PRIO_PROCESS, 0, max(-20, min(19, *nice))); err != nil {
			return fmt.Errorf("attack-bench: -nice: %w", err)
		}
	}
	o.secs = min(max(o.secs, 1), 60)
	killOnSignal()
	if os.Geteuid() != 0 {
		return errors.New("attack-bench: needs root (namespaces, daemons on port 111)")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ours, _ = filepath.Abs(ours)
	var lines []string
	header := fmt.Sprintf("# bench-attack %s, %d CPUs (%s), load %s, nice %d, %ds per phase, victim %d probes/s per transport, timeout %s",
		time.Now().UTC().Format("2006-01-02"), cpuCount(), cpuModel(), loadAvg(), *nice, o.secs, o.rate, o.timeout)
	fmt.Println(header)
	for _, d := range [][2]string{{"ours", ours + " -f -w"}, {"reference", ref + " -f -w"}} {
		l, err := runNamespace(self, d[0], d[1], o)
		lines = append(lines, l...)
		if err != nil {
			fmt.Fprintf(os.Stderr, "attack-bench: %s: %v\n", d[0], err)
		}
	}
	if out != "" {
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(out, []byte(header+"\n"+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			return err
		}
		fmt.Println("raw lines:", out)
	}
	fmt.Println()
	return attackReport(strings.NewReader(strings.Join(lines, "\n")), os.Stdout)
}

// runNamespace runs one daemon's phases under unshare (attack-ns).
func runNamespace(self, name, daemon string, o benchOpts) ([]string, error) {
	return runUnshared(nsRunTimeout, append([]string{self, "attack-ns", "-name", name, "-daemon", daemon,
		"-outer-ns", outerNS()}, o.args()...))
}

// runUnshared runs command (a re-run of rpcbench) under unshare in new
// net, mount and pid namespaces and a new process group, echoing and
// returning its output lines; the group is killed at the end or after
// timeout, whatever happened. The pid namespace: when the command (its
// init) ends, the kernel kills whatever is left in it, even a daemon that
// changed its uid.
func runUnshared(timeout time.Duration, command []string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := append([]string{"--net", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private", "--"}, command...)
	cmd := exec.Command("unshare", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	pr, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pgid := cmd.Process.Pid
	defer syscall.Kill(-pgid, syscall.SIGKILL) // stragglers of the group
	running.Store(int64(pgid))
	defer running.Store(0)
	go func() {
		<-ctx.Done()
		syscall.Kill(-pgid, syscall.SIGKILL)
	}()
	var lines []string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		fmt.Println(sc.Text())
		lines = append(lines, sc.Text())
	}
	err = cmd.Wait()
	if ctx.Err() != nil {
		err = fmt.Errorf("killed after %s", timeout)
	}
	return lines, err
}

// running is the process group of the namespace run in progress, killed
// when attack-bench is interrupted.
var running atomic.Int64

// killOnSignal ends the run in progress on SIGINT or SIGTERM: its process
// group is not the terminal's, so it would not get the signal itself.
func killOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-ch
		if pg := running.Load(); pg > 0 {
			syscall.Kill(-int(pg), syscall.SIGKILL)
		}
		fmt.Fprintln(os.Stderr, "attack-bench:", sig)
		os.Exit(130)
	}()
}

// outerNS names attack-bench's own network and mount namespaces, which
// attack-ns must not be in.
func outerNS() string {
	net, _ := os.Readlink("/proc/self/ns/net")
	mnt, _ := os.Readlink("/proc/self/ns/mnt")
	return net + "," + mnt
}

// attackNSMain is "rpcbench attack-ns", inside the private namespaces.
func attackNSMain(args []string) error {
	var o benchOpts
	var name, daemon string
	fs := flag.NewFlagSet("attack-ns", flag.ExitOnError)
	fs.StringVar(&name, "name", "ours", "daemon's name in the output")
	fs.StringVar(&daemon, "daemon", "", "daemon command line (space-separated)")
	outer := fs.String("outer-ns", "", "attack-bench's namespaces (net:[…],mnt:[…])")
	o.register(fs)
	fs.Parse(args)
	if err := mustBePrivateNS(*outer); err != nil {
		return err
	}
	if err := runCmd("ip", "link", "set", "lo", "up"); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", "/run", "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("attack-ns: mount /run: %w", err)
	}
	defer unix.Unmount("/run", unix.MNT_DETACH)
	bin, err := copySelf("/run/attack-bin")
	if err != nil {
		return err
	}
	rpcUID, err := ensureRPCUser()
	if err != nil {
		return err
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		return err
	}
	rh, err := newRemoteHost()
	if err != nil {
		return err
	}
	defer rh.close()
	want := map[string]bool{"none": true}
	for _, a := range strings.Split(o.attacks, ",") {
		want[a] = true
	}
	for _, a := range attackKinds {
		if !want[a] {
			continue
		}
		p := phase{name: name, attack: a, daemon: strings.Fields(daemon), o: o, bin: bin, rh: rh, rpcUID: rpcUID, nobody: nobody}
		for _, l := range p.run() {
			fmt.Printf("daemon=%s attack=%s %s\n", name, a, l)
		}
	}
	return nil
}

// mustBePrivateNS refuses to run in attack-bench's network or mount
// namespace (outer) or init's: attack-ns mounts over /run and adds links.
func mustBePrivateNS(outer string) error {
	if outer == "" {
		return errors.New("attack-ns: run it through attack-bench")
	}
	for _, ns := range []string{"net", "mnt"} {
		self, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			return err
		}
		init, _ := os.Readlink("/proc/1/ns/" + ns) // our own pid namespace's init: ourselves, or unreadable
		if init == self && os.Getpid() != 1 || strings.Contains(outer, self) {
			return fmt.Errorf("attack-ns: not in a private %s namespace (run it through attack-bench)", ns)
		}
	}
	out, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		return err
	}
	if n := strings.Count(strings.TrimSpace(string(out)), "\n") + 1; n != 1 {
		return fmt.Errorf("attack-ns: the network namespace has %d links, want only lo", n)
	}
	return nil
}

func runCmd(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// copySelf puts a copy of this binary where user nobody may run it.
func copySelf(dir string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(self)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(dir, "rpcbench")
	return p, os.WriteFile(p, b, 0o755)
}

// ensureRPCUser creates _rpc as Debian's package does (and make run) when
// it is missing, and returns its uid.
func ensureRPCUser() (int, error) {
	u, err := user.Lookup("_rpc")
	if err != nil {
		if err := runCmd("useradd", "--system", "--no-create-home", "--home-dir", "/run/rpcbind",
			"--shell", "/usr/sbin/nologin", "--gid", "nogroup", "_rpc"); err != nil {
			return 0, err
		}
		if u, err = user.Lookup("_rpc"); err != nil {
			return 0, err
		}
	}
	return strconv.Atoi(u.Uid)
}

// remoteHost is the attacker's machine: a placeholder process in its own
// network namespace, joined to ours by a veth pair.
type remoteHost struct {
	cmd        *exec.Cmd
	netns      string
	src4, src6 []string
}

func newRemoteHost() (*remoteHost, error) {
	cmd := exec.Command("sleep", "infinity")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("remote host: %w", err)
	}
	rh := &remoteHost{cmd: cmd, netns: "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net"}
	rh.src4, rh.src6 = remoteAddrs()
	fail := func(err error) (*remoteHost, error) { rh.close(); return nil, fmt.Errorf("remote host: %w", err) }
	for _, a := range [][]string{
		{"link", "add", vethHere, "type", "veth", "peer", "name", vethThere},
		{"link", "set", vethThere, "netns", strconv.Itoa(cmd.Process.Pid)},
		{"addr", "add", localV4 + "/15", "dev", vethHere},
		{"addr", "add", localV6 + "/64", "dev", vethHere, "nodad"},
		{"link", "set", vethHere, "up"},
	} {
		if err := runCmd("ip", a...); err != nil {
			return fail(err)
		}
	}
	var batch strings.Builder
	batch.WriteString("link set lo up\n")
	for _, a := range rh.src4 {
		fmt.Fprintf(&batch, "addr add %s/15 dev %s\n", a, vethThere)
	}
	for _, a := range rh.src6 {
		fmt.Fprintf(&batch, "addr add %s/64 dev %s nodad\n", a, vethThere)
	}
	fmt.Fprintf(&batch, "link set %s up\n", vethThere)
	c := exec.Command("nsenter", "--net="+rh.netns, "--", "ip", "-batch", "-")
	c.Stdin = strings.NewReader(batch.String())
	if out, err := c.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("ip -batch: %v: %s", err, out))
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, _ := exec.Command("ip", "-br", "link", "show", vethHere).Output()
		if strings.Contains(string(out), "UP") && !strings.Contains(string(out), "NO-CARRIER") {
			break
		}
		if time.Now().After(deadline) {
			return fail(errors.New("veth has no carrier after 5s"))
		}
	}
	return rh, nil
}

func (rh *remoteHost) close() {
	rh.cmd.Process.Kill()
	rh.cmd.Wait() // the namespace and the veth pair vanish with it
}

// phase is one daemon start, one attack, one victim run.
type phase struct {
	name, attack string
	daemon       []string
	o            benchOpts
	bin          string
	rh           *remoteHost
	rpcUID       int
	nobody       *user.User
}

// capped keeps the last bytes written to it (a daemon's log).
type capped struct {
	mu sync.Mutex
	b  []byte
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.b = append(c.b, p...)
	if len(c.b) > 16<<10 {
		c.b = append(c.b[:0], c.b[len(c.b)-8<<10:]...)
	}
	return len(p), nil
}

func (p *phase) run() (lines []string) {
	for _, f := range []string{"/run/rpcbind.sock", "/run/rpcbind.lock"} {
		os.Remove(f)
	}
	os.RemoveAll("/run/rpcbind")
	os.MkdirAll("/run/rpcbind", 0o755)
	os.Chown("/run/rpcbind", p.rpcUID, -1)

	log := &capped{}
	d := exec.Command(p.daemon[0], p.daemon[1:]...)
	d.Stdout, d.Stderr = log, log
	if err := d.Start(); err != nil {
		return []string{"error=start " + strconv.Quote(err.Error())}
	}
	exited := make(chan struct{})
	go func() { d.Wait(); close(exited) }()
	defer func() {
		d.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			d.Process.Kill()
			<-exited
		}
	}()
	if err := waitDaemon(exited); err != nil {
		fmt.Fprintf(os.Stderr, "attack-ns: %s: %v\n%s\n", p.name, err, log.b)
		return []string{"error=" + strconv.Quote(err.Error())}
	}
	pid := d.Process.Pid

	victimEnd := time.Duration(p.o.secs) * time.Second
	var atk *exec.Cmd
	atkOut := make(chan string, 16)
	if p.attack != "none" {
		atk = p.attacker(victimEnd + time.Second)
		atk.Stderr = os.Stderr
		pr, _ := atk.StdoutPipe()
		if err := atk.Start(); err != nil {
			return []string{"error=attacker " + strconv.Quote(err.Error())}
		}
		go func() {
			sc := bufio.NewScanner(pr)
			for sc.Scan() {
				atkOut <- sc.Text()
			}
			close(atkOut)
		}()
	}
	signalAttack := func(sig syscall.Signal) {
		if atk != nil {
			atk.Process.Signal(sig)
		}
	}
	// Over the ceiling the attacker is asked to stop (it still reports);
	// the timer below kills it if it does not.
	sampler := startRSS(pid, int64(p.o.rssCeilMiB)<<20, func() { signalAttack(syscall.SIGTERM) })
	atkErr := ""
	if atk != nil {
		select {
		case l, ok := <-atkOut:
			if !ok || l != "ready" {
				atkErr = "attacker did not get ready: " + l
			}
		case <-time.After(readyTimeout):
			atkErr = "attacker setup over " + readyTimeout.String()
			signalAttack(syscall.SIGKILL)
		}
	}
	var vres []victimResult
	if atkErr == "" {
		vres = runVictim(context.Background(), victimConfig{
			udp: "127.0.0.1:111", tcp: "127.0.0.1:111", unix: "/run/rpcbind.sock",
			rate: p.o.rate, dur: victimEnd, timeout: p.o.timeout,
		})
	}
	var atkLine string
	if atk != nil {
		timer := time.AfterFunc(30*time.Second, func() { signalAttack(syscall.SIGKILL) })
		for l := range atkOut {
			if strings.HasPrefix(l, "attacker ") {
				atkLine = l
			}
		}
		atk.Wait()
		timer.Stop()
	}
	maxRSS, aborted := sampler.stop()
	alive := true
	select {
	case <-exited:
		alive = false
	default:
	}
	for _, r := range vres {
		lines = append(lines, r.line())
		if r.firstErr != "" {
			fmt.Fprintf(os.Stderr, "attack-ns: %s %s victim %s: first error: %s\n", p.name, p.attack, r.transport, r.firstErr)
		}
	}
	l := fmt.Sprintf("rss_max_kib=%d daemon_alive=%v", maxRSS>>10, alive)
	if aborted {
		l += fmt.Sprintf(" aborted=rss_over_%dMiB", p.o.rssCeilMiB)
	}
	if atkErr != "" {
		l += " error=" + strconv.Quote(atkErr)
	}
	lines = append(lines, l)
	if atkLine != "" {
		lines = append(lines, atkLine)
	}
	if !alive {
		fmt.Fprintf(os.Stderr, "attack-ns: %s died during %s:\n%s\n", p.name, p.attack, log.b)
	}
	return lines
}

// attacker builds the attacker's command: remote kinds in the remote
// namespace, slowdump as nobody in ours.
func (p *phase) attacker(d time.Duration) *exec.Cmd {
	args := []string{"attack", "-kind", p.attack, "-d", d.String(),
		"-target4", localV4, "-target6", localV6}
	if p.attack == "slowdump" {
		uid, _ := strconv.Atoi(p.nobody.Uid)
		gid, _ := strconv.Atoi(p.nobody.Gid)
		c := exec.Command(p.bin, args...)
		c.SysProcAttr = &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}},
			Pdeathsig:  syscall.SIGKILL,
		}
		return c
	}
	args = append(args, "-src4", strings.Join(p.rh.src4, ","), "-src6", strings.Join(p.rh.src6, ","))
	c := exec.Command("nsenter", append([]string{"--net=" + p.rh.netns, "--", p.bin}, args...)...)
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return c
}

// waitDaemon waits until the daemon answers connections on TCP port 111
// and on the local socket.
func waitDaemon(exited <-chan struct{}) error {
	deadline := time.Now().Add(daemonStartMax)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("daemon exited at start")
		default:
		}
		t, err1 := net.DialTimeout("tcp", "127.0.0.1:111", 200*time.Millisecond)
		u, err2 := net.DialTimeout("unix", "/run/rpcbind.sock", 200*time.Millisecond)
		if t != nil {
			t.Close()
		}
		if u != nil {
			u.Close()
		}
		if err1 == nil && err2 == nil {
			time.Sleep(300 * time.Millisecond)
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("daemon not listening after " + daemonStartMax.String())
}

// rssSampler reads VmRSS every rssPeriod and keeps the maximum; past the
// ceiling it calls over once (the driver stops the attack).
type rssSampler struct {
	done   chan struct{}
	result chan [2]int64
}

func startRSS(pid int, ceiling int64, over func()) *rssSampler {
	s := &rssSampler{done: make(chan struct{}), result: make(chan [2]int64, 1)}
	go func() {
		var maxRSS, aborted int64
		tk := time.NewTicker(rssPeriod)
		defer tk.Stop()
		for {
			if ps, err := readProc(pid); err == nil {
				maxRSS = max(maxRSS, ps.rss)
				if ps.rss > ceiling && aborted == 0 {
					aborted = 1
					over()
				}
			}
			select {
			case <-s.done:
				s.result <- [2]int64{maxRSS, aborted}
				return
			case <-tk.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) stop() (int64, bool) {
	close(s.done)
	r := <-s.result
	return r[0], r[1] != 0
}

// loadAvg is the 1-minute load average: on a shared machine it says how
// much of the noise was other work.
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

func cpuCount() int { return runtime.NumCPU() }

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 1<<16))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// subcommands are the modes chosen by the first argument.
var subcommands = map[string]func([]string) error{
	"attack-bench":  attackBenchMain,
	"attack-ns":     attackNSMain,
	"attack":        attackMain,
	"attack-report": func([]string) error { return attackReport(os.Stdin, os.Stdout) },
	"instr-bench":   instrBenchMain,
	"instr-ns":      instrNSMain,
	"instr-client":  instrClientMain,
	"instr-report":  func([]string) error { return instrReport(os.Stdin, os.Stdout) },
}

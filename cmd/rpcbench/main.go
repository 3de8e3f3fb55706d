// Command rpcbench is a closed-loop load generator for rpcbind (program
// 100000) speaking raw ONC RPC (RFC 5531, AUTH_NONE) over UDP, TCP (one
// persistent connection per client, or a new connection per call) and the
// local AF_UNIX socket. Every run is bounded in time and in calls and stops
// by itself. It prints one line per run:
//
//	workload calls/s p50 p99 p999 timeouts errors [cpu-µs/call cpu-s/100k rss]
//
// "rpcbench report" prints bench-compare's table from such lines.
// "rpcbench attack-bench" is make bench-attack (attackbench_linux.go): a
// local victim measured while attacks run, against ours and the reference;
// "rpcbench attack-report" prints its table from the raw lines.
// "rpcbench instr-bench" is make bench-instructions (instrbench_linux.go):
// instructions (cachegrind) and syscalls per call, ours against the
// reference; "rpcbench instr-client" is its client, "rpcbench instr-report"
// prints its table from the raw lines.
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openrpcbind/rpcbind/xdr"
)

// Bounds that keep every run finite.
const (
	maxDuration = 120 * time.Second
	maxSamples  = 4 << 20 // latency samples kept in total
	maxReply    = 1 << 20 // largest reply read (a DUMP of 10,000 entries is ~450 KB)
	benchProg   = 0x2f000000
)

type config struct {
	addr      string // host:port for udp/tcp, path for unix
	transport string // udp, tcp, tcpconn, unix
	proc      string // null getport getaddr dump2 dump4 setunset
	clients   int
	duration  time.Duration
	calls     int64
	timeout   time.Duration
	preload   int
	pid       int
	label     string
	workers   int
}

func main() {
	if len(os.Args) > 1 {
		if fn := subcommands[os.Args[1]]; fn != nil {
			if err := fn(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, "rpcbench:", err)
				os.Exit(1)
			}
			return
		}
	}
	var c config
	flag.StringVar(&c.addr, "addr", "127.0.0.1:111", "daemon address (host:port), or socket path with -t unix")
	flag.StringVar(&c.transport, "t", "udp", "transport: udp, tcp (persistent), tcpconn (a connection per call), unix")
	flag.StringVar(&c.proc, "p", "getport", "workload: null, getport, getaddr, dump2, dump4, setunset, idle (only report -pid's memory, after -d without calls)")
	flag.IntVar(&c.clients, "c", 64, "concurrent clients, each with one call outstanding")
	flag.DurationVar(&c.duration, "d", 5*time.Second, "duration (at most 2m)")
	flag.Int64Var(&c.calls, "n", 0, "stop after this many calls (0: duration only); for setunset, the number of SETs")
	flag.DurationVar(&c.timeout, "timeout", time.Second, "per-call timeout")
	flag.IntVar(&c.preload, "preload", 0, "register this many programs (v3 SET over UDP to 127.0.0.1:111) before the run, removed after")
	flag.IntVar(&c.pid, "pid", 0, "daemon PID: report its CPU per call and resident memory")
	flag.StringVar(&c.label, "label", "", "label printed first on the result line")
	flag.IntVar(&c.workers, "workers", 0, "udp, tcp, unix: OS threads multiplexing the clients (0: one per 64 clients)")
	flag.Parse()
	if flag.NArg() == 1 && flag.Arg(0) == "report" {
		if err := report(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "rpcbench:", err)
			os.Exit(1)
		}
		return
	}
	if c.duration > maxDuration {
		c.duration = maxDuration
	}
	if c.clients < 1 || c.clients > 4096 {
		fmt.Fprintln(os.Stderr, "rpcbench: -c must be 1..4096")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	line, err := run(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rpcbench:", err)
		os.Exit(1)
	}
	fmt.Println(line)
}

// call builds an RPC call message for the workload; xid is patched per call.
func callMsg(proc string, i int, preload int) ([]byte, error) {
	b := make([]byte, 0, 128)
	hdr := func(vers, p uint32) {
		b = xdr.AppendUint32(b, 0) // xid, patched
		b = xdr.AppendUint32(b, 0) // CALL
		b = xdr.AppendUint32(b, 2) // rpcvers
		b = xdr.AppendUint32(b, 100000)
		b = xdr.AppendUint32(b, vers)
		b = xdr.AppendUint32(b, p)
		b = xdr.AppendUint64(b, 0) // cred AUTH_NONE
		b = xdr.AppendUint64(b, 0) // verf AUTH_NONE
	}
	target := uint32(100000)
	if preload > 0 {
		target = benchProg + uint32(preload-1) // the last registration
	}
	switch proc {
	case "null":
		hdr(2, 0)
	case "getport":
		hdr(2, 3)
		vers := uint32(2)
		if preload > 0 {
			vers = 1
		}
		b = xdr.AppendUint32(b, target)
		b = xdr.AppendUint32(b, vers)
		b = xdr.AppendUint32(b, 6) // tcp
		b = xdr.AppendUint32(b, 0)
	case "getaddr":
		hdr(4, 3)
		vers := uint32(4)
		if preload > 0 {
			vers = 1
		}
		b = xdr.AppendUint32(b, target)
		b = xdr.AppendUint32(b, vers)
		b = xdr.AppendString(b, "tcp")
		b = xdr.AppendString(b, "")
		b = xdr.AppendString(b, "")
	case "dump2":
		hdr(2, 4)
	case "dump4":
		hdr(4, 4)
	default:
		return nil, fmt.Errorf("unknown workload %q", proc)
	}
	return b, nil
}

func setMsg(set bool, prog uint32) []byte {
	p := uint32(1)
	if !set {
		p = 2
	}
	b := make([]byte, 0, 96)
	for _, w := range []uint32{0, 0, 2, 100000, 3, p, 0, 0, 0, 0} {
		b = xdr.AppendUint32(b, w)
	}
	b = xdr.AppendUint32(b, prog)
	b = xdr.AppendUint32(b, 1)
	b = xdr.AppendString(b, "tcp")
	port := 1024 + prog%60000
	b = xdr.AppendString(b, "0.0.0.0."+strconv.Itoa(int(port>>8))+"."+strconv.Itoa(int(port&255)))
	b = xdr.AppendString(b, "")
	return b
}

var errReply = errors.New("bad reply")

// check verifies an accepted SUCCESS reply for xid.
func check(r []byte, xid uint32) error {
	if len(r) < 24 || binary.BigEndian.Uint32(r) != xid {
		return errReply
	}
	if binary.BigEndian.Uint32(r[4:]) != 1 || binary.BigEndian.Uint32(r[8:]) != 0 {
		return errReply
	}
	vlen := binary.BigEndian.Uint32(r[16:])
	if vlen > 400 || len(r) < int(24+vlen) || binary.BigEndian.Uint32(r[20+vlen:]) != 0 {
		return errReply
	}
	return nil
}

// conn is one client's transport.
type conn interface {
	call(msg []byte, deadline time.Time) ([]byte, error)
	close()
}

type dgram struct {
	c   net.Conn
	buf []byte
}

func (d *dgram) call(msg []byte, deadline time.Time) ([]byte, error) {
	d.c.SetDeadline(deadline)
	if _, err := d.c.Write(msg); err != nil {
		return nil, err
	}
	xid := binary.BigEndian.Uint32(msg)
	for {
		n, err := d.c.Read(d.buf)
		if err != nil {
			return nil, err
		}
		if n >= 4 && binary.BigEndian.Uint32(d.buf) == xid {
			return d.buf[:n], nil
		}
	}
}
func (d *dgram) close() { d.c.Close() }

type stream struct {
	network, addr string
	perCall       bool
	c             net.Conn
	out, buf      []byte
}

func (s *stream) call(msg []byte, deadline time.Time) ([]byte, error) {
	if s.c == nil {
		c, err := net.DialTimeout(s.network, s.addr, time.Until(deadline))
		if err != nil {
			return nil, err
		}
		s.c = c
	}
	defer func() {
		if s.perCall && s.c != nil {
			s.c.Close()
			s.c = nil
		}
	}()
	s.c.SetDeadline(deadline)
	s.out = xdr.AppendUint32(s.out[:0], 0x80000000|uint32(len(msg)))
	s.out = append(s.out, msg...)
	if _, err := s.c.Write(s.out); err != nil {
		s.drop()
		return nil, err
	}
	s.buf = s.buf[:0]
	for last := false; !last; {
		var rm [4]byte
		if _, err := io.ReadFull(s.c, rm[:]); err != nil {
			s.drop()
			return nil, err
		}
		m := binary.BigEndian.Uint32(rm[:])
		last = m&0x80000000 != 0
		n := int(m & 0x7fffffff)
		if len(s.buf)+n > maxReply {
			s.drop()
			return nil, errors.New("reply too large")
		}
		start := len(s.buf)
		s.buf = append(s.buf, make([]byte, n)...)
		if _, err := io.ReadFull(s.c, s.buf[start:]); err != nil {
			s.drop()
			return nil, err
		}
	}
	return s.buf, nil
}
func (s *stream) drop() {
	if s.c != nil {
		s.c.Close()
		s.c = nil
	}
}
func (s *stream) close() { s.drop() }

func dial(c config) (conn, error) {
	switch c.transport {
	case "udp":
		u, err := net.Dial("udp", c.addr)
		if err != nil {
			return nil, err
		}
		return &dgram{c: u, buf: make([]byte, 65536)}, nil
	case "tcp":
		return &stream{network: "tcp", addr: c.addr}, nil
	case "tcpconn":
		return &stream{network: "tcp", addr: c.addr, perCall: true}, nil
	case "unix":
		return &stream{network: "unix", addr: c.addr}, nil
	}
	return nil, fmt.Errorf("unknown transport %q", c.transport)
}

type procStat struct {
	cpu time.Duration
	rss int64
}

// readProc returns the CPU time (utime+stime) and resident memory of pid.
func readProc(pid int) (procStat, error) {
	var ps procStat
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ps, err
	}
	s := string(st)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ps, errors.New("cannot parse /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return ps, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	ps.cpu = time.Duration(ut+stt) * time.Second / 100 // USER_HZ is 100 on Linux
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return ps, err
	}
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				ps.rss = kb * 1024
			}
		}
	}
	return ps, nil
}

func preload(ctx context.Context, n int, set bool) error {
	u, err := net.Dial("udp", "127.0.0.1:111")
	if err != nil {
		return err
	}
	d := &dgram{c: u, buf: make([]byte, 65536)}
	defer d.close()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		m := setMsg(set, benchProg+uint32(i))
		binary.BigEndian.PutUint32(m, uint32(i+1))
		var r []byte
		for try := 0; try < 5; try++ {
			if r, err = d.call(m, time.Now().Add(time.Second)); err == nil {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("preload %d: %w", i, err)
		}
		if err := check(r, uint32(i+1)); err != nil || len(r) < 28 || binary.BigEndian.Uint32(r[24:]) != 1 {
			return fmt.Errorf("preload %d: SET/UNSET refused", i)
		}
	}
	return nil
}

func run(ctx context.Context, c config) (string, error) {
	if c.preload > 0 {
		if err := preload(ctx, c.preload, true); err != nil {
			return "", err
		}
		defer preload(context.Background(), c.preload, false)
	}
	if c.proc == "setunset" {
		return runSetUnset(ctx, c)
	}
	if c.proc == "idle" {
		if c.pid <= 0 {
			return "", errors.New("-p idle needs -pid")
		}
		// Idle means left alone: the sample is taken after -d without
		// calls (after the preload, if any), not on the heels of the last
		// reply, so that a daemon that settles when quiet is seen settled.
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(c.duration):
		}
		ps, err := readProc(c.pid)
		if err != nil {
			return "", err
		}
		label := c.label
		if label == "" {
			label = fmt.Sprintf("idle/r%d", c.preload)
		}
		return fmt.Sprintf("%s rss_kib=%d", label, ps.rss/1024), nil
	}
	tmpl, err := callMsg(c.proc, 0, c.preload)
	if err != nil {
		return "", err
	}
	var before procStat
	if c.pid > 0 {
		if before, err = readProc(c.pid); err != nil {
			return "", err
		}
	}
	label := c.label
	if label == "" {
		label = fmt.Sprintf("%s/%s/c%d/r%d", c.proc, c.transport, c.clients, c.preload)
	}
	if res, elapsed, ok, err := runEngine(ctx, c, tmpl); ok {
		if err != nil {
			return "", err
		}
		return finish(c, label, before, res, elapsed)
	}
	ctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	var (
		done, timeouts, errs atomic.Int64
		mu                   sync.Mutex
		samples              = make([]time.Duration, 0, 1<<16)
		wg                   sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < c.clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			cn, err := dial(c)
			if err != nil {
				errs.Add(1)
				return
			}
			defer cn.close()
			msg := append([]byte(nil), tmpl...)
			local := make([]time.Duration, 0, 4096)
			xid := uint32(w) << 20
			for ctx.Err() == nil {
				if c.calls > 0 && done.Load() >= c.calls {
					break
				}
				xid++
				binary.BigEndian.PutUint32(msg, xid)
				t0 := time.Now()
				r, err := cn.call(msg, t0.Add(c.timeout))
				lat := time.Since(t0)
				switch {
				case err != nil:
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						timeouts.Add(1)
					} else {
						errs.Add(1)
					}
					continue
				case check(r, xid) != nil:
					errs.Add(1)
					continue
				}
				done.Add(1)
				if len(local) < cap(local) {
					local = append(local, lat)
				} else {
					mu.Lock()
					if len(samples)+len(local) <= maxSamples {
						samples = append(samples, local...)
					}
					mu.Unlock()
					local = local[:0]
				}
			}
			mu.Lock()
			if len(samples)+len(local) <= maxSamples {
				samples = append(samples, local...)
			}
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	res := workerResult{done: done.Load(), timeouts: timeouts.Load(), errs: errs.Load(), samples: samples}
	return finish(c, label, before, res, time.Since(start))
}

// finish formats the result line.
func finish(c config, label string, before procStat, res workerResult, elapsed time.Duration) (string, error) {
	samples := res.samples
	slices.Sort(samples)
	pct := func(p float64) time.Duration {
		if len(samples) == 0 {
			return 0
		}
		i := int(p * float64(len(samples)))
		if i >= len(samples) {
			i = len(samples) - 1
		}
		return samples[i]
	}
	n := res.done
	line := fmt.Sprintf("%s calls/s=%.0f p50=%s p99=%s p999=%s calls=%d timeouts=%d errors=%d",
		label, float64(n)/elapsed.Seconds(), us(pct(0.5)), us(pct(0.99)), us(pct(0.999)), n, res.timeouts, res.errs)
	if c.pid > 0 {
		after, err := readProc(c.pid)
		if err != nil {
			return "", err
		}
		cpu := after.cpu - before.cpu
		per := 0.0
		if n > 0 {
			per = float64(cpu.Microseconds()) / float64(n)
		}
		line += fmt.Sprintf(" cpu_us/call=%.2f cpu_s/100k=%.3f rss_kib=%d", per, per/10, after.rss/1024)
	}
	return line, nil
}

func us(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) + "us" }

// runSetUnset times n sequential SETs then n UNSETs over one transport.
func runSetUnset(ctx context.Context, c config) (string, error) {
	n := int(c.calls)
	if n <= 0 {
		n = 10000
	}
	dialer := dial
	if c.transport == "udp" {
		dialer = dialRawUDP
	}
	cn, err := dialer(c)
	if err != nil {
		return "", err
	}
	defer cn.close()
	phase := func(set bool) (time.Duration, error) {
		t0 := time.Now()
		for i := 0; i < n; i++ {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			m := setMsg(set, benchProg+0x100000+uint32(i))
			xid := uint32(i + 1)
			if !set {
				xid |= 1 << 30
			}
			binary.BigEndian.PutUint32(m, xid)
			var r []byte
			var err error
			for try := 0; try < 5; try++ {
				if r, err = cn.call(m, time.Now().Add(c.timeout)); err == nil {
					break
				}
			}
			if err != nil {
				return 0, err
			}
			if check(r, xid) != nil || len(r) < 28 || binary.BigEndian.Uint32(r[24:]) != 1 {
				return 0, fmt.Errorf("call %d refused", i)
			}
		}
		return time.Since(t0), nil
	}
	ts, err := phase(true)
	if err != nil {
		return "", fmt.Errorf("SET phase: %w", err)
	}
	tu, err := phase(false)
	if err != nil {
		return "", fmt.Errorf("UNSET phase: %w", err)
	}
	label := c.label
	if label == "" {
		label = fmt.Sprintf("setunset/%s/n%d", c.transport, n)
	}
	return fmt.Sprintf("%s set_s=%.3f unset_s=%.3f total_s=%.3f", label, ts.Seconds(), tu.Seconds(), (ts + tu).Seconds()), nil
}

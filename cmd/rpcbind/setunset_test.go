//go:build linux

package main

import (
	"bytes"
	endian "encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/server"
	"github.com/openrpcbind/rpcbind/pmap"
)

// memoryStateParent is where the benchmarks keep a state directory on a
// memory file system, as Debian's /run/rpcbind is: /dev/shm when it is a
// tmpfs, else "" (none).
func memoryStateParent() string {
	var st unix.Statfs_t
	if unix.Statfs("/dev/shm", &st) == nil && st.Type == unix.TMPFS_MAGIC {
		return "/dev/shm"
	}
	return ""
}

// setUnsetCalls are v3 SET and UNSET calls as make bench-compare's
// setunset workload sends them (cmd/rpcbench: tcp, owner left to the
// daemon), for program prog.
func setUnsetCalls(prog uint32) (set, unset []byte) {
	args := pmap.AppendRPCB(nil, prog, 1, "tcp", "0.0.0.0.15.161", "")
	return pmapCall(3, pmap.RPCBProcSet, args), pmapCall(3, pmap.RPCBProcUnset, args)
}

// BenchmarkSetUnsetUDP is the per-change path as the daemon runs it: the
// composed handler (guard, hosts access, service, statistics, journal)
// behind the UDP server, and a client on loopback sending a v3 SET then an
// UNSET and waiting for each reply, as make bench-compare's "10,000
// SETs+UNSETs, -w" row does (one op = one pair). "tmpfs" keeps the journal
// on a memory file system as Debian's /run does, "disk" in the test's
// temporary directory (fdatasync included). The figure that matters on a
// tmpfs is the pair's round trip: on 2026-12-06 a journalled change went
// through the scheduler's system-call entry twice (pwrite, fdatasync), and
// each woke sysmon.
func BenchmarkSetUnsetUDP(b *testing.B) {
	for _, st := range []struct{ name, parent string }{{"tmpfs", memoryStateParent()}, {"disk", ""}} {
		b.Run(st.name, func(b *testing.B) {
			if st.name == "tmpfs" && st.parent == "" {
				b.Skip("no tmpfs at /dev/shm")
			}
			cs := newComposedIn(b, st.parent, "-f")
			srv := server.New(cs.h, server.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			defer srv.Shutdown(b.Context())
			pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			sock, err := server.FromPacketConn(pc)
			if err != nil {
				b.Fatal(err)
			}
			srv.Start(sock)
			c, err := net.DialUDP("udp4", nil, pc.LocalAddr().(*net.UDPAddr))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 512)
			call := func(req []byte, xid uint32) {
				endian.BigEndian.PutUint32(req, xid)
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				n, err := c.Read(buf)
				if err != nil {
					b.Fatal(err)
				}
				if n != 28 || endian.BigEndian.Uint32(buf) != xid || endian.BigEndian.Uint32(buf[24:]) != 1 {
					b.Fatalf("call %#x: reply % x, want TRUE", xid, buf[:n])
				}
			}
			prog := uint32(0x20000000)
			b.ReportAllocs()
			for b.Loop() {
				prog++
				set, unset := setUnsetCalls(prog)
				call(set, prog)
				call(unset, prog|1<<31)
			}
		})
	}
}

// BenchmarkComposedSetUnset10k: the composed handler alone (no socket),
// its journal on tmpfs, serving the row's whole workload per op — 10,000
// v3 SETs of distinct programs from a loopback UDP caller, then their
// UNSETs — so that the table's growth and the journal's compactions are
// in the figure (ns/change). Steadier than the socket benchmarks on a
// shared machine; it does not see scheduler effects (same process).
func BenchmarkComposedSetUnset10k(b *testing.B) {
	parent := memoryStateParent()
	if parent == "" {
		b.Skip("no tmpfs at /dev/shm")
	}
	loop := &access.Caller{Netid: "udp", Addr: netip.MustParseAddrPort("127.0.0.1:700"),
		Dst: netip.MustParseAddrPort("127.0.0.1:111"), UID: -1}
	cs := newComposedIn(b, parent, "-f", "--max-regs-per-owner=20000", "--max-reg-bytes-per-owner=4194304")
	tr := &transport{out: make([]byte, 0, server.UDPBufSize)}
	const n = 10000
	sets, unsets := make([][]byte, n), make([][]byte, n)
	for i := range sets {
		sets[i], unsets[i] = setUnsetCalls(0x20000000 + uint32(i))
	}
	serve := func(req []byte) {
		if rep, _, _ := tr.serve(cs.h, req, loop); len(rep) != 28 || rep[27] != 1 {
			b.Fatalf("reply % x, want TRUE", rep)
		}
	}
	for b.Loop() {
		for _, r := range sets {
			serve(r)
		}
		for _, r := range unsets {
			serve(r)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(2*n), "ns/change")
}

// BenchmarkDaemonSetUnset is make bench-compare's "10,000 SETs+UNSETs, -w"
// row as a benchmark: the daemon in its own process (-f -w, the
// bench's caps), in private network and mount namespaces with a tmpfs on
// /run (Debian's), on port 111; the client sends a v3 SET then an UNSET
// over loopback UDP and waits for each reply. One op is one pair;
// s/10k-pairs is the row's figure. Unlike BenchmarkSetUnsetUDP it sees
// what crossing processes costs: the daemon idles between calls, so a
// system call through the scheduler (the journal's pwrite and fdatasync
// on 2026-12-06) woke the parked sysmon each time.
func BenchmarkDaemonSetUnset(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root (network and mount namespaces)")
	}
	bin := binary(b)
	script := `ip link set lo up && mount -t tmpfs -o mode=0755 tmpfs /run && mkdir /run/rpcbind &&
		{ chown _rpc /run/rpcbind 2>/dev/null || true; } &&
		exec "$0" -f -w --max-regs-per-owner=20000 --max-reg-bytes-per-owner=4194304`
	cmd := exec.Command("unshare", "-n", "-m", "sh", "-c", script, bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	fd, err := dialNetns(cmd.Process.Pid)
	if err != nil {
		b.Fatalf("%v\n%s", err, stderr.Bytes())
	}
	defer unix.Close(fd)
	buf := make([]byte, 512)
	call := func(req []byte, xid uint32) error {
		endian.BigEndian.PutUint32(req, xid)
		for try := 0; ; {
			if _, err := unix.Write(fd, req); err != nil {
				return err
			}
		read:
			n, err := unix.Read(fd, buf)
			switch {
			case err == unix.EINTR:
				goto read // a signal (SO_RCVTIMEO: not restarted)
			case err == unix.EAGAIN && try < 5:
				try++
				continue // lost or not served yet: resend
			case err != nil:
				return fmt.Errorf("call %#x: %w", xid, err)
			case n >= 4 && endian.BigEndian.Uint32(buf) != xid:
				goto read // a late reply to a resent call
			}
			if n != 28 || endian.BigEndian.Uint32(buf[24:]) != 1 {
				return fmt.Errorf("call %#x: reply % x, want TRUE", xid, buf[:n])
			}
			return nil
		}
	}
	// Wait until the daemon serves (the SET of a program never used).
	deadline := time.Now().Add(10 * time.Second)
	for {
		set, unset := setUnsetCalls(0x2fffffff)
		err := call(set, 1)
		if err == nil {
			err = call(unset, 2)
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("daemon not serving: %v\n%s", err, stderr.Bytes())
		}
		time.Sleep(20 * time.Millisecond)
	}
	prog := uint32(0x20000000)
	for b.Loop() {
		prog++
		set, unset := setUnsetCalls(prog)
		if err := call(set, prog); err != nil {
			b.Fatal(err)
		}
		if err := call(unset, prog|1<<31); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)*10000, "s/10k-pairs")
}

// dialNetns returns a UDP socket connected to 127.0.0.1:111 in the network
// namespace of pid, once pid has left ours (unshare). The socket is made
// on a thread moved into that namespace, which ends with its goroutine
// (never unlocked); the socket stays in the namespace it was made in.
func dialNetns(pid int) (int, error) {
	var own unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &own); err != nil {
		return -1, err
	}
	path := fmt.Sprintf("/proc/%d/ns/net", pid)
	for i := 0; ; i++ {
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			return -1, err
		}
		if st.Ino != own.Ino {
			break
		}
		if i == 500 {
			return -1, fmt.Errorf("pid %d never left our network namespace", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	type res struct {
		fd  int
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := func() (int, error) {
			ns, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return -1, err
			}
			defer unix.Close(ns)
			if err := unix.Setns(ns, unix.CLONE_NEWNET); err != nil {
				return -1, fmt.Errorf("setns: %w", err)
			}
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return -1, err
			}
			tv := unix.NsecToTimeval(int64(time.Second))
			if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
				unix.Close(fd)
				return -1, err
			}
			// lo comes up a moment after the namespace.
			for i := 0; ; i++ {
				err := unix.Connect(fd, &unix.SockaddrInet4{Port: 111, Addr: [4]byte{127, 0, 0, 1}})
				if err == nil {
					return fd, nil
				}
				if err != unix.ENETUNREACH || i == 500 {
					unix.Close(fd)
					return -1, fmt.Errorf("connect: %w", err)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
		ch <- res{fd, err}
	}()
	r := <-ch
	return r.fd, r.err
}

package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/openrpcbind/rpcbind/internal/daemon"
	"github.com/openrpcbind/rpcbind/internal/server"
)

// envSockets describes the listening sockets handed to a daemon that
// daemon.DropPrivileges re-executed (builds with cgo): one line per socket,
// "FD FLAGS NETID ADDR", FLAGS "-" or letters a (activated by systemd) and
// x (abstract), ADDR the rest of the line. Order is kept: the self
// registrations take the first socket of each netid.
const envSockets = "RPCBIND_DROPPED_SOCKETS"

// maxHandedSockets bounds what a handover may describe (-h takes a few
// addresses; systemd passes a few sockets).
const maxHandedSockets = 256

// handover lists what a re-executed daemon needs: the sockets, the lock
// (as Detach hands it down) and, in a detached child, the readiness pipe.
func handover(socks []*server.Socket, lock *os.File) (daemon.Handover, error) {
	var h daemon.Handover
	var lines []string
	for _, s := range socks {
		var c syscall.Conn
		switch {
		case s.Listener != nil:
			sc, ok := s.Listener.(syscall.Conn)
			if !ok {
				return h, fmt.Errorf("rpcbind: socket %s %s: no descriptor", s.Netid, s.Addr)
			}
			c = sc
		case s.Packet != nil:
			c = s.Packet
		default:
			continue
		}
		fd, err := fdOf(c)
		if err != nil {
			return h, fmt.Errorf("rpcbind: socket %s %s: %w", s.Netid, s.Addr, err)
		}
		flags := ""
		if s.Activated {
			flags += "a"
		}
		if s.Abstract {
			flags += "x"
		}
		if flags == "" {
			flags = "-"
		}
		h.FDs = append(h.FDs, fd)
		lines = append(lines, fmt.Sprintf("%d %s %s %s", fd, flags, s.Netid, s.Addr))
	}
	h.Env = append(h.Env, envSockets+"="+strings.Join(lines, "\n"))
	if lock != nil {
		h.FDs = append(h.FDs, int(lock.Fd()))
		h.Env = append(h.Env, daemon.EnvLockFD+"="+strconv.Itoa(int(lock.Fd())))
	}
	if v := os.Getenv(daemon.EnvReadyFD); v != "" {
		if fd, err := strconv.Atoi(v); err == nil && fd > 2 {
			h.FDs = append(h.FDs, fd)
		}
	}
	return h, nil
}

func fdOf(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return -1, err
	}
	return fd, nil
}

// handedSockets rebuilds the sockets described by envSockets.
func handedSockets() ([]*server.Socket, error) {
	v, ok := os.LookupEnv(envSockets)
	if !ok {
		return nil, errors.New("rpcbind: re-executed without sockets (" + envSockets + " unset)")
	}
	os.Unsetenv(envSockets)
	var socks []*server.Socket
	fail := func(err error) ([]*server.Socket, error) {
		for _, s := range socks {
			s.Close()
		}
		return nil, err
	}
	for _, line := range strings.Split(v, "\n") {
		if line == "" {
			continue
		}
		if len(socks) == maxHandedSockets {
			return fail(fmt.Errorf("rpcbind: more than %d sockets handed over", maxHandedSockets))
		}
		f := strings.SplitN(line, " ", 4)
		if len(f) != 4 {
			return fail(fmt.Errorf("rpcbind: bad handed-over socket %q", line))
		}
		fd, err := strconv.Atoi(f[0])
		if err != nil || fd < 3 {
			return fail(fmt.Errorf("rpcbind: bad handed-over socket %q", line))
		}
		s, err := handedSocket(fd, f[1], f[2], f[3])
		if err != nil {
			return fail(err)
		}
		socks = append(socks, s)
	}
	if len(socks) == 0 {
		return nil, errors.New("rpcbind: no socket handed over")
	}
	return socks, nil
}

func handedSocket(fd int, flags, netid, addr string) (*server.Socket, error) {
	unix.CloseOnExec(fd)
	file := os.NewFile(uintptr(fd), netid+" "+addr)
	defer file.Close() // the listener or conn holds a dup
	s := &server.Socket{Netid: netid, Addr: addr, Activated: strings.Contains(flags, "a"), Abstract: strings.Contains(flags, "x")}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return nil, fmt.Errorf("rpcbind: handed-over socket %d: %w", fd, err)
	}
	if typ == unix.SOCK_DGRAM {
		pc, err := net.FilePacketConn(file)
		if err != nil {
			return nil, fmt.Errorf("rpcbind: handed-over socket %d: %w", fd, err)
		}
		uc, ok := pc.(*net.UDPConn)
		if !ok {
			pc.Close()
			return nil, fmt.Errorf("rpcbind: handed-over socket %d is not UDP", fd)
		}
		s.Packet = uc
		return s, nil
	}
	l, err := net.FileListener(file)
	if err != nil {
		return nil, fmt.Errorf("rpcbind: handed-over socket %d: %w", fd, err)
	}
	if ul, ok := l.(*net.UnixListener); ok && !s.Activated && !s.Abstract {
		ul.SetUnlinkOnClose(true) // as the listener Listen created
	}
	s.Listener = l
	return s, nil
}

package systemd

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// TakeActivated takes the descriptors systemd passed (LISTEN_PID,
// LISTEN_FDS, LISTEN_FDNAMES) and classifies them. It clears those variables,
// so only the first call finds anything; outside socket activation it
// returns an empty Activation. It never fails as a whole: descriptors it
// cannot serve are listed in Refused.
func TakeActivated() *Activation {
	return FromFiles(listenFiles())
}

// listenFdsStart is SD_LISTEN_FDS_START: the first passed descriptor.
const listenFdsStart = 3

// maxListenFDs bounds LISTEN_FDS: rpcbind serves at most six sockets, and a
// number past this is not systemd's. The descriptors past it are left alone.
const maxListenFDs = 64

// listenFiles is sd_listen_fds(3) with unset_environment set: when
// LISTEN_PID is this process, it returns the LISTEN_FDS descriptors from fd
// 3 on, close-on-exec, each named by its LISTEN_FDNAMES entry or
// "LISTEN_FD_<n>", and it always clears the three variables so that no child
// inherits them. (It replaces go-systemd's activation.Files, whose package
// pulls crypto/tls, and with it about 1 MB of mapped code, into the daemon.)
func listenFiles() []*os.File {
	pidS, nS, namesS := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(k)
	}
	pid, err := strconv.Atoi(pidS)
	if err != nil || pid != os.Getpid() {
		return nil
	}
	n, err := strconv.Atoi(nS)
	if err != nil || n <= 0 {
		return nil
	}
	n = min(n, maxListenFDs)
	names := strings.Split(namesS, ":")
	files := make([]*os.File, 0, n)
	for i := range n {
		fd := listenFdsStart + i
		unix.CloseOnExec(fd)
		name := "LISTEN_FD_" + strconv.Itoa(fd)
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		files = append(files, os.NewFile(uintptr(fd), name))
	}
	return files
}

// FromFiles classifies already-taken descriptors, as TakeActivated does. A
// file whose name is not activation's "LISTEN_FD_<n>" default is kept as
// the socket's Name. FromFiles owns the files afterwards.
func FromFiles(files []*os.File) *Activation {
	a := &Activation{}
	for _, f := range files {
		name := f.Name()
		if strings.HasPrefix(name, "LISTEN_FD_") {
			name = ""
		}
		s, err := classify(f)
		if err != nil {
			r := Refused{FD: s.FD, Name: name, Netid: s.Netid, Addr: s.Addr, Err: err}
			if errors.Is(err, ErrDualStack) {
				r.File = f
			} else {
				f.Close()
			}
			a.Refused = append(a.Refused, r)
			continue
		}
		s.Name = name
		a.Sockets = append(a.Sockets, s)
	}
	return a
}

// sockInfo is what the kernel says about one descriptor.
type sockInfo struct {
	fd                 int
	domain, typ, proto int
	listening, v6only  bool
	sa                 unix.Sockaddr
}

func inspect(f *os.File) (si sockInfo, err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return si, err
	}
	cerr := rc.Control(func(fd uintptr) {
		si.fd = int(fd)
		if si.typ, err = unix.GetsockoptInt(si.fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil {
			if errors.Is(err, unix.ENOTSOCK) {
				err = ErrNotSocket
			}
			return
		}
		if si.domain, err = unix.GetsockoptInt(si.fd, unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil {
			return
		}
		if si.proto, err = unix.GetsockoptInt(si.fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil {
			return
		}
		if si.typ == unix.SOCK_STREAM {
			var v int
			if v, err = unix.GetsockoptInt(si.fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil {
				return
			}
			si.listening = v != 0
		}
		if si.domain == unix.AF_INET6 {
			var v int
			if v, err = unix.GetsockoptInt(si.fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); err != nil {
				return
			}
			si.v6only = v != 0
		}
		si.sa, err = unix.Getsockname(si.fd)
	})
	if cerr != nil {
		return si, cerr
	}
	return si, err
}

// classify fills Netid, Addr and FD even when it returns an error, as far as
// it got, so that the refusal can be reported with them.
func classify(f *os.File) (Socket, error) {
	si, err := inspect(f)
	s := Socket{FD: si.fd, File: f}
	if err != nil {
		return s, err
	}
	switch sa := si.sa.(type) {
	case *unix.SockaddrInet4:
		s.Addr = uaddr(netip.AddrFrom4(sa.Addr), sa.Port)
		s.Netid = inetNetid(si, "tcp", "udp")
	case *unix.SockaddrInet6:
		s.Addr = uaddr(netip.AddrFrom16(sa.Addr), sa.Port)
		s.Netid = inetNetid(si, "tcp6", "udp6")
	case *unix.SockaddrUnix:
		s.Addr = sa.Name
		// x/sys/unix shows an abstract name's leading NUL as '@'.
		if strings.HasPrefix(sa.Name, "@") {
			s.Addr, s.Abstract = sa.Name[1:], true
		}
		if si.typ == unix.SOCK_STREAM {
			s.Netid = "local"
		}
	}
	if s.Netid == "" {
		return s, ErrUnsupported
	}
	if si.domain == unix.AF_INET6 && !si.v6only {
		return s, ErrDualStack
	}
	if si.typ == unix.SOCK_STREAM {
		if !si.listening {
			return s, ErrNotListening
		}
		if s.Listener, err = net.FileListener(f); err != nil {
			return s, err
		}
		return s, nil
	}
	if s.PacketConn, err = net.FilePacketConn(f); err != nil {
		return s, err
	}
	return s, nil
}

func inetNetid(si sockInfo, stream, dgram string) string {
	switch {
	// MPTCP listeners (SocketProtocol=mptcp; Go's default for net.Listen
	// since 1.24) serve plain TCP clients too.
	case si.typ == unix.SOCK_STREAM && (si.proto == unix.IPPROTO_TCP || si.proto == unix.IPPROTO_MPTCP):
		return stream
	case si.typ == unix.SOCK_DGRAM && si.proto == unix.IPPROTO_UDP:
		return dgram
	}
	return ""
}

// uaddr formats a universal address (RFC 5665 §5.2.3.3/§5.2.3.4) as
// libtirpc's taddr2uaddr does: inet_ntop's text (no zone), then the port's
// high and low bytes.
func uaddr(ip netip.Addr, port int) string {
	b := make([]byte, 0, 48)
	b = ip.WithZone("").AppendTo(b)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(port>>8), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(port&0xff), 10)
	return string(b)
}

package server

import (
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openrpcbind/rpcbind/internal/access"
)

// Raw accepting (EngineEpoll, TCP listeners). A connection accepted through
// net.Listener costs the runtime's poller a registration and a removal, a
// getsockname, a descriptor dup for the event loop and a handful of
// allocations; under a connect-and-close flood that made the accept loop
// the slowest part, the listening socket's queue stayed hundreds to
// thousands deep and an honest client's connection waited behind it
// (bench-attack churn, TCP victim p50 17-48 ms). Here the accept loop waits
// on a duplicate of the listening socket in the runtime's poller and takes
// up to acceptBatch connections per wake-up with accept4: a connection its
// peer already closed costs accept4, one peek and close; any other is
// handed to an event loop as it is. Listener wrappers stay in charge through
// two optional interfaces: Unwrapper exposes the listener below, Admitter
// applies a per-source cap to each connection.

// acceptBatch bounds the connections taken per wake-up, so the other
// goroutines (and the unix listener's accept loop) get their turn.
const acceptBatch = 64

// Unwrapper is a listener wrapper that lets the server accept from the
// listener below it.
type Unwrapper interface{ Unwrap() net.Listener }

// Admitter is a listener wrapper that admits each connection the server
// accepts below it: false means the connection is to be reset; otherwise
// release is called once when it closes.
type Admitter interface {
	Admit(netip.Addr) (release func(), ok bool)
}

// rawTCP finds the TCP listener below l's wrappers, every one of which
// must be an Unwrapper, and the Admitters among them (outermost first).
func rawTCP(l net.Listener) (*net.TCPListener, []Admitter) {
	var adms []Admitter
	for {
		if a, ok := l.(Admitter); ok {
			adms = append(adms, a)
		}
		switch t := l.(type) {
		case *net.TCPListener:
			return t, adms
		case Unwrapper:
			l = t.Unwrap()
		default:
			return nil, nil
		}
	}
}

// releaser closes by calling its functions (the Admitters' releases).
type releaser []func()

func (r releaser) Close() error {
	for _, f := range r {
		f()
	}
	return nil
}

// startRawAccept starts the raw accept loop of sock when its listener
// allows it; false means the caller runs the ordinary one.
func (s *Server) startRawAccept(sock *Socket) bool {
	tl, adms := rawTCP(sock.Listener)
	if tl == nil {
		return false
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return false
	}
	dfd := -1
	rc.Control(func(fd uintptr) { dfd, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) })
	if err != nil || dfd < 0 {
		return false
	}
	// Non-blocking (O_NONBLOCK is the open file's): the runtime's poller
	// takes it, so its RawConn can wait.
	f := os.NewFile(uintptr(dfd), "listener")
	frc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return false
	}
	s.mu.Lock()
	s.closers = append(s.closers, f)
	s.mu.Unlock()
	go s.rawAcceptLoop(sock, f, frc, adms)
	return true
}

type accepted struct {
	fd int
	sa unix.Sockaddr
}

func (s *Server) rawAcceptLoop(sock *Socket, f *os.File, rc interface {
	Read(func(uintptr) bool) error
}, adms []Admitter) {
	defer s.wg.Done()
	s.loopRunning()
	batch := make([]accepted, 0, acceptBatch)
	var aerr error
	var backoff time.Duration
	for {
		batch, aerr = batch[:0], nil
		err := rc.Read(func(fd uintptr) bool {
			for len(batch) < acceptBatch {
				nfd, sa, err := unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
				switch err {
				case nil:
					batch = append(batch, accepted{nfd, sa})
					continue
				case unix.EAGAIN:
					return len(batch) > 0
				case unix.EINTR, unix.ECONNABORTED:
					continue
				}
				aerr = err
				return true
			}
			return true
		})
		for _, a := range batch {
			s.acceptedFD(sock, a, adms)
		}
		if err == nil && aerr != nil {
			err = os.NewSyscallError("accept4", aerr)
		}
		if err != nil {
			if !s.acceptFailed(sock.Netid, err, &backoff) {
				return
			}
			continue
		}
		backoff = 0
	}
}

// acceptedFD closes a connection its peer closed before sending anything,
// resets one an Admitter refuses, and hands the others to a loop.
func (s *Server) acceptedFD(sock *Socket, a accepted, adms []Admitter) {
	s.Stat.Accepted.Add(1)
	if peerClosed(uintptr(a.fd)) {
		s.Stat.ClosedAtAccept.Add(1)
		unix.Close(a.fd)
		return
	}
	caller := access.Caller{Netid: sock.Netid, UID: -1, Addr: sockaddrToAddrPort(a.sa)}
	if lsa, err := unix.Getsockname(a.fd); err == nil {
		caller.Dst = sockaddrToAddrPort(lsa)
	}
	var rel releaser
	for _, adm := range adms {
		r, ok := adm.Admit(caller.Addr.Addr())
		if !ok {
			rel.Close()
			// RST: no TIME_WAIT kept for a refused peer.
			unix.SetsockoptLinger(a.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
			unix.Close(a.fd)
			return
		}
		rel = append(rel, r)
	}
	var closer io.Closer
	if len(rel) > 0 {
		closer = rel
	}
	s.handOffFD(a.fd, closer, &caller)
}

// sockaddrToAddrPort converts what accept4 or getsockname returned; an
// IPv4-mapped IPv6 address is unmapped, a link-local one keeps its scope as
// a numeric zone (as the runtime's TCPAddr does).
func sockaddrToAddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch t := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(t.Addr), uint16(t.Port))
	case *unix.SockaddrInet6:
		a := netip.AddrFrom16(t.Addr).Unmap()
		if t.ZoneId != 0 && a.Is6() {
			a = a.WithZone(strconv.FormatUint(uint64(t.ZoneId), 10))
		}
		return netip.AddrPortFrom(a, uint16(t.Port))
	}
	return netip.AddrPort{}
}

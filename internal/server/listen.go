package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Reference locations (Debian rpcbind 1.2.6).
const (
	DefaultPort       = 111                 // PMAPPORT, /etc/services "sunrpc"
	DefaultUnixSocket = "/run/rpcbind.sock" // _PATH_RPCBINDSOCK as Debian builds it
)

// Socket is one bound socket with the netid and universal address that the
// self-registrations need.
type Socket struct {
	Netid     string       // "udp", "udp6", "tcp", "tcp6" or "local"
	Addr      string       // universal address: "0.0.0.0.0.111", "::.0.111", "/run/rpcbind.sock"
	Abstract  bool         // the abstract AF_UNIX twin; not self-registered
	Activated bool         // given by the caller (systemd); never unlinked
	Listener  net.Listener // streams
	Packet    *net.UDPConn // datagrams
}

// Close closes the underlying socket.
func (s *Socket) Close() error {
	if s.Listener != nil {
		return s.Listener.Close()
	}
	if s.Packet != nil {
		return s.Packet.Close()
	}
	return nil
}

// ListenConfig says what Listen creates.
type ListenConfig struct {
	Port       int    // 0 means DefaultPort, negative an ephemeral port per socket (tests)
	UnixSocket string // path of the AF_UNIX stream socket; "" for none
	Abstract   bool   // also listen on "@" + UnixSocket
	// Hosts are the -h addresses (numeric or resolvable). When set, UDP is
	// bound to each of them plus 127.0.0.1 and ::1 (added as the reference
	// does, duplicates dropped), instead of the wildcard.
	Hosts []string
	// RestrictTCP applies Hosts to TCP as well (the reference keeps TCP on
	// the wildcard).
	RestrictTCP bool
	// NoIPv4/NoIPv6 leave a family out (tests).
	NoIPv4, NoIPv6 bool
	// Skip lists netids the caller already has a socket for (systemd);
	// "@local" is the abstract socket.
	Skip map[string]bool
	Log  *slog.Logger
}

// Listen creates the listening set. A transport that cannot be created is
// logged and skipped (an IPv6-less host starts with a warning; a -h address
// that does not bind is logged, never fatal). Listen fails only when no
// socket at all could be created.
func Listen(cfg ListenConfig) ([]*Socket, error) {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	port := cfg.Port
	if port == 0 {
		port = DefaultPort
	} else if port < 0 {
		port = 0
	}
	var socks []*Socket
	add := func(s *Socket, err error, what string) {
		if err != nil {
			log.Warn("server: cannot listen", "on", what, "err", err)
			return
		}
		socks = append(socks, s)
	}
	if cfg.UnixSocket != "" {
		if !cfg.Skip["local"] {
			s, err := listenUnix(cfg.UnixSocket)
			add(s, err, cfg.UnixSocket)
		}
		if cfg.Abstract && !cfg.Skip["@local"] {
			s, err := listenAbstract(cfg.UnixSocket)
			add(s, err, "@"+cfg.UnixSocket)
		}
	}

	var hosts4, hosts6 []netip.Addr
	if len(cfg.Hosts) > 0 {
		hosts4, hosts6 = resolveHosts(cfg.Hosts, log)
	}
	v6ok := !cfg.NoIPv6
	if v6ok && !ipv6Available() {
		log.Warn("server: IPv6 is not available, serving IPv4 only")
		v6ok = false
	}
	type fam struct {
		udp, tcp string
		any      netip.Addr
		hosts    []netip.Addr
		on       bool
	}
	for _, f := range []fam{
		{"udp", "tcp", netip.IPv4Unspecified(), hosts4, !cfg.NoIPv4},
		{"udp6", "tcp6", netip.IPv6Unspecified(), hosts6, v6ok},
	} {
		if !f.on {
			continue
		}
		udpAddrs := []netip.Addr{f.any}
		if len(cfg.Hosts) > 0 {
			udpAddrs = f.hosts
		}
		if !cfg.Skip[f.udp] {
			for _, a := range udpAddrs {
				ap := netip.AddrPortFrom(a, uint16(port))
				s, err := listenUDP(f.udp, ap)
				add(s, err, f.udp+" "+ap.String())
			}
		}
		tcpAddrs := []netip.Addr{f.any}
		if len(cfg.Hosts) > 0 && cfg.RestrictTCP {
			tcpAddrs = f.hosts
		}
		if !cfg.Skip[f.tcp] {
			for _, a := range tcpAddrs {
				ap := netip.AddrPortFrom(a, uint16(port))
				s, err := listenTCP(f.tcp, ap)
				add(s, err, f.tcp+" "+ap.String())
			}
		}
	}
	if len(socks) == 0 {
		return nil, errors.New("server: listen: no socket could be created")
	}
	return socks, nil
}

// resolveHosts turns -h arguments into addresses per family, the user's
// first, then 127.0.0.1 and ::1, without duplicates (the reference aborts
// with a double free on a duplicate; Debian bug, upstream 1e00cd1). A name
// contributes its first address of each family, as getaddrinfo's first
// result does in the reference.
func resolveHosts(hosts []string, log *slog.Logger) (v4, v6 []netip.Addr) {
	seen := map[netip.Addr]bool{}
	put := func(a netip.Addr) {
		a = a.Unmap()
		if seen[a] {
			return
		}
		seen[a] = true
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	for _, h := range hosts {
		if a, err := netip.ParseAddr(h); err == nil {
			put(a)
			continue
		}
		addrs, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", h)
		if err != nil {
			log.Warn("server: -h: cannot resolve", "host", h, "err", err)
			continue
		}
		var got4, got6 bool
		for _, a := range addrs {
			a = a.Unmap()
			if a.Is4() && !got4 {
				got4 = true
				put(a)
			} else if a.Is6() && !got6 {
				got6 = true
				put(a)
			}
		}
	}
	put(netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	put(netip.IPv6Loopback())
	return v4, v6
}

func ipv6Available() bool {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// sockopts: IPV6_V6ONLY on IPv6 sockets (the reference's netconfig cannot
// handle dual-stack sockets), SO_REUSEADDR on TCP, packet info on UDP.
func sockopts(network string) func(string, string, syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if network == "udp6" || network == "tcp6" {
				if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); serr != nil {
					return
				}
			}
			switch network {
			case "tcp", "tcp6":
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			case "udp":
				// Before bind: a datagram queued between bind and the first
				// read must carry its destination too.
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
			case "udp6":
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}

// network is the Go network for a netid: "udp4"/"tcp4" for IPv4, because
// Go turns "udp" on 0.0.0.0 into a dual-stack AF_INET6 socket.
func network(netid string) string {
	if netid == "udp" || netid == "tcp" {
		return netid + "4"
	}
	return netid
}

func listenUDP(netid string, ap netip.AddrPort) (*Socket, error) {
	lc := net.ListenConfig{Control: sockopts(netid)}
	pc, err := lc.ListenPacket(context.Background(), network(netid), ap.String())
	if err != nil {
		return nil, err
	}
	uc := pc.(*net.UDPConn)
	return &Socket{Netid: netid, Addr: uaddr(uc.LocalAddr()), Packet: uc}, nil
}

func listenTCP(netid string, ap netip.AddrPort) (*Socket, error) {
	// No TCP keep-alive on accepted connections: the reference sets none
	// (idle peers are closed by IdleTimeout and reaping), and Go's default
	// costs four setsockopt calls per accept, a quarter of the accept
	// path under a connection flood.
	lc := net.ListenConfig{Control: sockopts(netid), KeepAlive: -1}
	l, err := lc.Listen(context.Background(), network(netid), ap.String())
	if err != nil {
		return nil, err
	}
	return &Socket{Netid: netid, Addr: uaddr(l.Addr()), Listener: l}, nil
}

// listenUnix removes a stale socket file (only a socket: anything else at
// that path is an error), binds and makes the socket 0666 as the reference
// (umask 0111 around bind).
func listenUnix(path string) (*Socket, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("server: listen: %s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o666); err != nil {
		l.Close()
		return nil, err
	}
	return &Socket{Netid: "local", Addr: path, Listener: l}, nil
}

// listenAbstract listens on the abstract name "\0"+path, which libtirpc
// after 1.3.4 and recent kernels try first; it leaves no file behind.
func listenAbstract(path string) (*Socket, error) {
	l, err := net.Listen("unix", "@"+path)
	if err != nil {
		return nil, err
	}
	return &Socket{Netid: "local", Addr: path, Abstract: true, Listener: l}, nil
}

// uaddr is the RFC 1833 universal address of a bound socket.
func uaddr(a net.Addr) string {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UnixAddr:
		return a.Name
	default:
		return ""
	}
	p := ap.Port()
	return ap.Addr().Unmap().WithZone("").String() + "." + strconv.Itoa(int(p>>8)) + "." + strconv.Itoa(int(p&0xff))
}

// ErrDualStack is the reference's refusal of a dual-stack IPv6 socket.
var ErrDualStack = errors.New("server: systemd has passed an IPv4/IPv6 dual-mode socket; " +
	"please fix your systemd config by specifying IPv4 and IPv6 sockets separately and using BindIPv6Only=ipv6-only")

// FromListener wraps a listening stream socket opened by someone else
// (systemd). An IPv6 socket without IPV6_V6ONLY is refused, as the
// reference does.
func FromListener(l net.Listener) (*Socket, error) {
	s := &Socket{Listener: l, Activated: true, Addr: uaddr(l.Addr())}
	switch a := l.Addr().(type) {
	case *net.UnixAddr:
		s.Netid = "local"
		if len(a.Name) > 0 && (a.Name[0] == '@' || a.Name[0] == 0) {
			s.Abstract = true
			s.Addr = a.Name[1:]
		}
	case *net.TCPAddr:
		s.Netid = "tcp"
		if a.AddrPort().Addr().Is6() && !a.AddrPort().Addr().Is4In6() {
			s.Netid = "tcp6"
			if err := checkV6Only(l.(syscall.Conn)); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("server: unsupported listener %T", l)
	}
	return s, nil
}

// FromPacketConn wraps a UDP socket opened by someone else (systemd).
func FromPacketConn(pc net.PacketConn) (*Socket, error) {
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return nil, fmt.Errorf("server: unsupported packet socket %T", pc)
	}
	s := &Socket{Netid: "udp", Packet: uc, Activated: true, Addr: uaddr(uc.LocalAddr())}
	if a := uc.LocalAddr().(*net.UDPAddr).AddrPort().Addr(); a.Is6() && !a.Is4In6() {
		s.Netid = "udp6"
		if err := checkV6Only(uc); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func checkV6Only(c syscall.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	v := 0
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
	}); err != nil {
		return err
	}
	if gerr != nil {
		return gerr
	}
	if v == 0 {
		return ErrDualStack
	}
	return nil
}

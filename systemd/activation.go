package systemd

import (
	"errors"
	"fmt"
	"net"
	"os"
)

// Errors reported in Refused.Err.
var (
	// ErrDualStack: an AF_INET6 socket without IPV6_V6ONLY. The reference
	// refuses it and its transport stays down; DualStackLog is what it logs.
	ErrDualStack    = errors.New("systemd: IPv4/IPv6 dual-mode socket (IPV6_V6ONLY off)")
	ErrNotSocket    = errors.New("systemd: passed descriptor is not a socket")
	ErrNotListening = errors.New("systemd: passed stream socket is not listening (Accept=yes is not supported)")
	ErrUnsupported  = errors.New("systemd: unsupported socket family, type or protocol")
)

// DualStackLog is the reference's text, logged at LOG_ERR as two lines, when
// systemd passes a dual-mode IPv6 socket (rpcbind 1.2.6 handle_ipv6_socket).
var DualStackLog = [2]string{
	"systemd has passed an IPv4/IPv6 dual-mode socket.",
	"Please fix your systemd config by specifying IPv4 and IPv6 sockets separately and using BindIPv6Only=ipv6-only.",
}

// Socket is one descriptor passed by systemd, classified.
type Socket struct {
	Netid string // "local" (AF_UNIX stream), "tcp", "tcp6", "udp", "udp6"
	// Addr is the universal address rpcbind's self-entries show:
	// "0.0.0.0.0.111", "::.0.111", "/run/rpcbind.sock". For an abstract
	// AF_UNIX socket it is the name without its leading NUL (Abstract set).
	Addr     string
	Abstract bool
	Name     string // LISTEN_FDNAMES entry; "" when systemd named none
	FD       int    // descriptor number as passed (3, 4, ...)

	// File is the passed descriptor; exactly one of Listener (stream) and
	// PacketConn (datagram) is set, built on a dup of it. Close closes all.
	File       *os.File
	Listener   net.Listener
	PacketConn net.PacketConn
}

// Close closes the socket's listener or packet conn and its File.
func (s *Socket) Close() error {
	var err error
	if s.Listener != nil {
		err = s.Listener.Close()
	}
	if s.PacketConn != nil {
		err = s.PacketConn.Close()
	}
	if s.File != nil {
		if e := s.File.Close(); err == nil {
			err = e
		}
	}
	return err
}

// Refused is a passed descriptor that is not served; it has been closed,
// except a dual-mode socket (see File). Netid and Addr are filled in as far
// as the socket could be classified. A dual-mode "tcp6"/"udp6" socket counts
// as passed, so the daemon does not bind that transport itself: the
// reference fails it, and systemd holds the port anyway.
type Refused struct {
	FD    int
	Name  string
	Netid string
	Addr  string
	Err   error
	// File is a refused dual-mode socket, kept open until CloseRefused. The
	// reference keeps it while it creates the other transports, so its port
	// stays taken for them as under systemd: with a dual-mode [::]:111 the
	// IPv4 wildcard bind of the same protocol fails (EADDRINUSE), as in the
	// C daemon under systemd-socket-activate.
	File *os.File
}

func (r Refused) Error() string {
	if r.Netid != "" {
		return fmt.Sprintf("systemd: refused fd %d (%s %s): %v", r.FD, r.Netid, r.Addr, r.Err)
	}
	return fmt.Sprintf("systemd: refused fd %d: %v", r.FD, r.Err)
}

func (r Refused) Unwrap() error { return r.Err }

// Activation is what systemd passed, taken once by TakeActivated.
type Activation struct {
	Sockets []Socket  // usable, in the order systemd passed them
	Refused []Refused // not served, in the order passed
}

// Transport names one kind of socket rpcbind listens on.
type Transport struct {
	Netid    string
	Abstract bool // AF_UNIX abstract name (only with Netid "local")
}

// Transports are the sockets rpcbind listens on when nothing restricts it:
// /run/rpcbind.sock, its abstract twin, and port 111 on tcp, udp, tcp6, udp6.
var Transports = []Transport{
	{Netid: "local"}, {Netid: "local", Abstract: true},
	{Netid: "udp"}, {Netid: "tcp"}, {Netid: "udp6"}, {Netid: "tcp6"},
}

// Passed reports whether systemd passed a socket of this transport, whether
// it is served or was refused.
func (a *Activation) Passed(t Transport) bool {
	if a == nil {
		return false
	}
	for i := range a.Sockets {
		if a.Sockets[i].Netid == t.Netid && a.Sockets[i].Abstract == t.Abstract {
			return true
		}
	}
	for i := range a.Refused {
		if a.Refused[i].Netid == t.Netid && !t.Abstract && errors.Is(a.Refused[i].Err, ErrDualStack) {
			return true
		}
	}
	return false
}

// Missing returns the transports of want that systemd did not pass, in
// want's order: the ones the daemon binds itself (the reference creates every
// netconfig transport without a passed fd the normal way).
func (a *Activation) Missing(want []Transport) []Transport {
	var out []Transport
	for _, t := range want {
		if !a.Passed(t) {
			out = append(out, t)
		}
	}
	return out
}

// CloseRefused closes the refused descriptors still open (dual-mode
// sockets); call it once the daemon has created its own sockets.
func (a *Activation) CloseRefused() {
	if a == nil {
		return
	}
	for i := range a.Refused {
		if f := a.Refused[i].File; f != nil {
			f.Close()
			a.Refused[i].File = nil
		}
	}
}

// Close closes every usable socket and the refused ones still open.
func (a *Activation) Close() {
	if a == nil {
		return
	}
	for i := range a.Sockets {
		a.Sockets[i].Close()
	}
	a.CloseRefused()
}

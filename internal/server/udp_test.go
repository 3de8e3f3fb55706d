package server

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openrpcbind/rpcbind/internal/testenv"
)

// TestUDPShutdownWakesReaders: readers blocked in recvmmsg leave on
// Shutdown through its wake-up datagrams alone (the udpWake backstop is
// taken away), on wildcard sockets of both families with two readers
// each; and each socket is handed back as it came — non-blocking, no
// timeouts, still receiving — as systemd keeps it for the next daemon.
func TestUDPShutdownWakesReaders(t *testing.T) {
	saved := udpWake
	udpWake = time.Hour
	defer func() { udpWake = saved }()
	h := &echo{}
	s := New(h, Options{Log: quietLog(), UDPReaders: 2})
	type sock struct {
		to   netip.AddrPort
		keep int // the test's own descriptor of the socket (systemd's)
	}
	var socks []sock
	for _, c := range []struct{ netid, addr, lo string }{
		{"udp", "0.0.0.0:0", "127.0.0.1"},
		{"udp6", "[::]:0", "::1"},
	} {
		so, err := listenUDP(c.netid, netip.MustParseAddrPort(c.addr))
		if err != nil {
			testenv.Missing(t, "a %s socket on %s (%v)", c.netid, c.addr, err)
		}
		rc, _ := so.Packet.SyscallConn()
		keep := -1
		rc.Control(func(fd uintptr) { keep, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) })
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(keep)
		s.Start(so)
		port := so.Packet.LocalAddr().(*net.UDPAddr).AddrPort().Port()
		socks = append(socks, sock{netip.AddrPortFrom(netip.MustParseAddr(c.lo), port), keep})
	}
	<-s.Running()
	for _, so := range socks {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: so.to.Addr().AsSlice()})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := udpExchange(t, c, so.to, []byte("ping")); !strings.HasSuffix(got, "|ping") {
			t.Errorf("%v: reply %q", so.to, got)
		}
		c.Close()
	}
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(ioTimeout):
		t.Fatal("Shutdown did not wake the UDP readers")
	}
	for _, so := range socks {
		fl, err := unix.FcntlInt(uintptr(so.keep), unix.F_GETFL, 0)
		if err != nil || fl&unix.O_NONBLOCK == 0 {
			t.Errorf("%v: flags %#x (%v), want O_NONBLOCK back", so.to, fl, err)
		}
		for _, opt := range []int{unix.SO_RCVTIMEO, unix.SO_SNDTIMEO} {
			tv, err := unix.GetsockoptTimeval(so.keep, unix.SOL_SOCKET, opt)
			if err != nil || tv.Sec != 0 || tv.Usec != 0 {
				t.Errorf("%v: timeout %d left at %+v (%v)", so.to, opt, tv, err)
			}
		}
		// Drain the wake-ups, then a new datagram still arrives.
		buf := make([]byte, 64)
		for {
			if _, _, err := unix.Recvfrom(so.keep, buf, unix.MSG_DONTWAIT); err != nil {
				break
			}
		}
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(so.to))
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("after"))
		c.Close()
		fds := []unix.PollFd{{Fd: int32(so.keep), Events: unix.POLLIN}}
		if n, err := unix.Poll(fds, int(ioTimeout/time.Millisecond)); n != 1 || err != nil {
			t.Fatalf("%v: nothing received after Shutdown (%d, %v)", so.to, n, err)
		}
		if n, _, err := unix.Recvfrom(so.keep, buf, unix.MSG_DONTWAIT); err != nil || string(buf[:n]) != "after" {
			t.Errorf("%v: after Shutdown read %q, %v", so.to, buf[:n], err)
		}
	}
}

// TestSendFromServedSocket: a relayed reply goes out through a socket the
// Server serves (its UDPConn is closed once detached), from the address
// asked for; after Shutdown SendFrom fails instead of writing to a
// descriptor that may have been reused.
func TestSendFromServedSocket(t *testing.T) {
	s, _ := newServer(t, Options{})
	so, err := listenUDP("udp", netip.MustParseAddrPort("0.0.0.0:0"))
	if err != nil {
		t.Fatal(err)
	}
	s.Start(so)
	port := so.Packet.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	me := c.LocalAddr().(*net.UDPAddr).AddrPort()
	from := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), port)
	if err := SendFrom(so.Packet, me, from, []byte("relayed")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	buf := make([]byte, 64)
	n, src, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != "relayed" || src != from {
		t.Errorf("got %q from %v, want %q from %v", buf[:n], src, "relayed", from)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := SendFrom(so.Packet, me, from, []byte("late")); err == nil {
		t.Error("SendFrom through a socket closed by Shutdown succeeded")
	}
}

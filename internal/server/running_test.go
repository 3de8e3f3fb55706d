package server

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

// TestRunningNoLoops: a Server with nothing started is running at once.
func TestRunningNoLoops(t *testing.T) {
	s, _ := newServer(t, Options{})
	select {
	case <-s.Running():
	default:
		t.Fatal("Running not closed with no loop started")
	}
}

// TestRunningWaitsForEveryLoop: Running closes only when every UDP reader
// (UDPReaders per socket) and every accept loop has entered its loop, and
// then a datagram and a connection are served. The test blocks on the
// channel (no timer): a loop that never runs hangs it until -timeout.
func TestRunningWaitsForEveryLoop(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		s, _ := newServer(t, Options{StreamEngine: engine, UDPReaders: 3})
		u4 := startUDP(t, s, "udp", "127.0.0.1:0")
		u6 := startUDP(t, s, "udp6", "[::1]:0")
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.Start(&Socket{Netid: "tcp", Addr: ln.Addr().String(), Listener: ln})
		<-s.Running()
		s.mu.Lock()
		starting := s.starting
		s.mu.Unlock()
		if starting != 0 {
			t.Errorf("Running closed with %d loops still starting", starting)
		}
		for _, to := range []netip.AddrPort{u4, u6} {
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: to.Addr().AsSlice()})
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := udpExchange(t, c, to, []byte("ping")); !strings.HasSuffix(got, "|ping") {
				t.Errorf("%v: reply %q", to, got)
			}
			c.Close()
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
}

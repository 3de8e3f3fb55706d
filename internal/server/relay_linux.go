package server

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// SendFrom writes msg to to through the UDP socket c, leaving from the
// address from (the address a call arrived on). The forwarder sends relayed
// CALLIT/INDIRECT replies this way, so they come from port 111 and from the
// address the caller used rather than from a forwarding socket's random
// port (spec §10 "should improve"; libtirpc's clients accept either).
//
// A broadcast or multicast call (rpc_broadcast, `rpcinfo -b`) arrived on an
// address that cannot be a source: the kernel then picks the source of the
// outgoing interface, as it does for the reference's forwarding socket.
func SendFrom(c *net.UDPConn, to, from netip.AddrPort, msg []byte) error {
	if c == nil {
		return errors.New("server: relay: no UDP socket for the reply")
	}
	var oob []byte
	if a := from.Addr().Unmap(); usableSource(a) {
		if la, ok := c.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() == nil {
			a = from.Addr() // an IPv6 socket keeps the address as it came
		}
		oob = appendReplyPktinfo(nil, a, 0)
	}
	write := c.WriteMsgUDPAddrPort
	if u, ok := udpDetached.Load(c); ok {
		write = u.(*udpSock).writeMsg // the Server serves c: c itself is closed
	}
	_, _, err := write(msg, oob, to)
	if oob != nil && err != nil {
		// A subnet-directed broadcast address (192.0.2.255) looks like a
		// unicast one until the kernel refuses it as a source (EINVAL or
		// ENETUNREACH, by route): let the kernel choose.
		_, _, err = write(msg, nil, to)
	}
	return err
}

// writeMsg is WriteMsgUDPAddrPort on the socket's descriptor (blocking, at
// most udpSendWait).
func (u *udpSock) writeMsg(msg, oob []byte, to netip.AddrPort) (n, oobn int, err error) {
	var sa unix.Sockaddr
	switch a := to.Addr(); {
	case u.v6:
		sa6 := &unix.SockaddrInet6{Port: int(to.Port()), Addr: a.As16()}
		if z := a.Zone(); z != "" {
			if id, err := strconv.ParseUint(z, 10, 32); err == nil {
				sa6.ZoneId = uint32(id)
			} else if ifi, err := net.InterfaceByName(z); err == nil {
				sa6.ZoneId = uint32(ifi.Index)
			}
		}
		sa = sa6
	case a.Unmap().Is4():
		sa = &unix.SockaddrInet4{Port: int(to.Port()), Addr: a.Unmap().As4()}
	default:
		return 0, 0, fmt.Errorf("server: relay: %v from an IPv4 socket", to)
	}
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.fd < 0 {
		return 0, 0, net.ErrClosed
	}
	n, err = unix.SendmsgN(u.fd, msg, oob, sa, 0)
	if err != nil {
		return 0, 0, os.NewSyscallError("sendmsg", err)
	}
	return n, len(oob), nil
}

// usableSource reports whether a can be asked for as a reply's source.
func usableSource(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() &&
		a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

package server

import (
	"errors"
	"net"
	"net/netip"
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
	_, _, err := c.WriteMsgUDPAddrPort(msg, oob, to)
	if oob != nil && err != nil {
		// A subnet-directed broadcast address (192.0.2.255) looks like a
		// unicast one until the kernel refuses it as a source (EINVAL or
		// ENETUNREACH, by route): let the kernel choose.
		_, _, err = c.WriteMsgUDPAddrPort(msg, nil, to)
	}
	return err
}

// usableSource reports whether a can be asked for as a reply's source.
func usableSource(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() &&
		a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

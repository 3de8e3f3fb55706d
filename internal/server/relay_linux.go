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
func SendFrom(c *net.UDPConn, to, from netip.AddrPort, msg []byte) error {
	if c == nil {
		return errors.New("server: relay: no UDP socket for the reply")
	}
	var oob []byte
	if a := from.Addr(); a.IsValid() && !a.IsUnspecified() {
		if la, ok := c.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() != nil {
			a = a.Unmap()
		}
		oob = appendReplyPktinfo(nil, a, 0)
	}
	_, _, err := c.WriteMsgUDPAddrPort(msg, oob, to)
	return err
}

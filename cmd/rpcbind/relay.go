package main

import (
	"net"
	"net/netip"

	"github.com/openrpcbind/rpcbind/internal/server"
)

// relayFrom returns the forwarder's reply hook: a relayed CALLIT/INDIRECT
// reply leaves from the UDP socket of the call's transport (port 111) and
// from the address the call was sent to. A socket bound to that very address
// (-h) is preferred; otherwise the wildcard one, with packet info.
func relayFrom(socks []*server.Socket) func(netid string, to, from netip.AddrPort, msg []byte) error {
	byNetid := map[string][]*net.UDPConn{}
	for _, s := range socks {
		if s.Packet != nil {
			byNetid[s.Netid] = append(byNetid[s.Netid], s.Packet)
		}
	}
	return func(netid string, to, from netip.AddrPort, msg []byte) error {
		cs := byNetid[netid]
		var c *net.UDPConn
		for _, x := range cs {
			la, ok := x.LocalAddr().(*net.UDPAddr)
			if !ok {
				continue
			}
			if ap := la.AddrPort(); ap.Addr().Unmap() == from.Addr().Unmap() {
				c = x
				break
			} else if c == nil && ap.Addr().IsUnspecified() {
				c = x
			}
		}
		if c == nil && len(cs) > 0 {
			c = cs[0]
		}
		return server.SendFrom(c, to, from, msg)
	}
}

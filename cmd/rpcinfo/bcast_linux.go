package main

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
)

// setBroadcast sets SO_BROADCAST, without which Linux refuses to send to a
// broadcast address.
func setBroadcast(pc *net.UDPConn) {
	rc, err := pc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
	})
}

// broadcastTargets lists what libtirpc's __rpc_getbroadifs finds through
// getifaddrs(3), one entry per address of an up interface, in the
// kernel's order: for IPv4, the address's own broadcast address
// (IFA_BROADCAST, set by "brd" — an address added without one has none
// and is skipped, whatever its mask) on an IFF_BROADCAST interface; for
// IPv6, ff02::202 on an IFF_MULTICAST interface, once per address.
func broadcastTargets(port uint16) (v4, v6 []bcastTarget) {
	flags := map[int]net.Interface{}
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, nil
	}
	for _, ifi := range ifs {
		flags[ifi.Index] = ifi
	}
	for _, fam := range []int{syscall.AF_INET, syscall.AF_INET6} {
		rib, err := syscall.NetlinkRIB(syscall.RTM_GETADDR, fam)
		if err != nil {
			continue
		}
		msgs, err := syscall.ParseNetlinkMessage(rib)
		if err != nil {
			continue
		}
		for _, m := range msgs {
			if m.Header.Type != syscall.RTM_NEWADDR || len(m.Data) < syscall.SizeofIfAddrmsg {
				continue
			}
			family := m.Data[0]
			index := int(binary.NativeEndian.Uint32(m.Data[4:8]))
			ifi, ok := flags[index]
			if !ok || int(family) != fam || ifi.Flags&net.FlagUp == 0 {
				continue
			}
			attrs, err := syscall.ParseNetlinkRouteAttr(&m)
			if err != nil {
				continue
			}
			if fam == syscall.AF_INET6 {
				if ifi.Flags&net.FlagMulticast != 0 {
					v6 = append(v6, bcastTarget{dst: netip.AddrPortFrom(netip.MustParseAddr(bcastAllRPCBinds), port), zone: ifi.Name})
				}
				continue
			}
			if ifi.Flags&net.FlagBroadcast == 0 {
				continue
			}
			for _, at := range attrs {
				if at.Attr.Type == syscall.IFA_BROADCAST && len(at.Value) == 4 {
					v4 = append(v4, bcastTarget{dst: netip.AddrPortFrom(netip.AddrFrom4([4]byte(at.Value)), port)})
				}
			}
		}
	}
	return v4, v6
}

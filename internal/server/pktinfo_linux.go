package server

import (
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// oobSize holds one IP_PKTINFO or IPV6_PKTINFO control message, with room
// for one more the kernel may add.
var oobSize = 2 * unix.CmsgSpace(unix.SizeofInet6Pktinfo)

// enablePktinfo asks the kernel to report each datagram's destination
// (libtirpc svc_dg_enable_pktinfo does the same).
func enablePktinfo(uc *net.UDPConn, v6 bool) error {
	rc, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if v6 {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// parsePktinfo walks the control messages without allocating. dst is the
// header destination (the Caller's Dst); spec is the source the reply must
// use (ipi_spec_dst for IPv4, the destination for IPv6).
func parsePktinfo(oob []byte) (dst, spec netip.Addr, ifindex uint32, ok bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return
		}
		data := oob[unix.CmsgLen(0):l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			p := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			return netip.AddrFrom4(p.Addr), netip.AddrFrom4(p.Spec_dst), uint32(p.Ifindex), true
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			p := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			a := netip.AddrFrom16(p.Addr)
			return a, a, p.Ifindex, true
		}
		sp := unix.CmsgSpace(l - unix.CmsgLen(0))
		if sp > len(oob) {
			return
		}
		oob = oob[sp:]
	}
	return
}

// appendReplyPktinfo builds the control message that makes the reply leave
// from spec. As libtirpc (svc_dg_valid_pktinfo) the interface index is
// zeroed so that routing picks the interface; we keep it for IPv6
// link-local sources, which need it. For a multicast destination there is
// no valid source to copy: the kernel chooses.
func appendReplyPktinfo(b []byte, spec netip.Addr, ifindex uint32) []byte {
	if spec.Is4() {
		n := unix.CmsgSpace(unix.SizeofInet4Pktinfo)
		b = append(b, make([]byte, n)...)
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		p := (*unix.Inet4Pktinfo)(unsafe.Pointer(&b[unix.CmsgLen(0)]))
		p.Spec_dst = spec.As4()
		return b
	}
	if spec.IsMulticast() || !spec.IsValid() {
		return b
	}
	if !spec.IsLinkLocalUnicast() {
		ifindex = 0
	}
	n := unix.CmsgSpace(unix.SizeofInet6Pktinfo)
	b = append(b, make([]byte, n)...)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	p := (*unix.Inet6Pktinfo)(unsafe.Pointer(&b[unix.CmsgLen(0)]))
	p.Addr = spec.As16()
	p.Ifindex = ifindex
	return b
}

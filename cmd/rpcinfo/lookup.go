package main

import (
	"context"
	"net"
	"net/netip"

	"github.com/openrpcbind/rpcbind/pmap"
	"github.com/openrpcbind/rpcbind/xdr"
)

// resolve is getaddrinfo(host): family 0 is any, else pmap.FamilyInet or
// FamilyInet6. It returns the first address.
func (a *app) resolve(host string, family pmap.Family) (netip.Addr, bool) {
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return netip.Addr{}, false
		}
		switch {
		case family == pmap.FamilyInet && !ip.Is4():
			return netip.Addr{}, false
		case family == pmap.FamilyInet6 && !ip.Is6():
			return netip.Addr{}, false
		}
		return ip, true
	}
	if host == "" {
		return netip.Addr{}, false
	}
	network := "ip"
	switch family {
	case pmap.FamilyInet:
		network = "ip4"
	case pmap.FamilyInet6:
		network = "ip6"
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.LookupTimeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, network, host)
	if err != nil || len(ips) == 0 {
		return netip.Addr{}, false
	}
	ip := ips[0]
	if family == pmap.FamilyInet {
		ip = ip.Unmap()
	}
	return ip, true
}

// rpcbindHandle is rpcinfo's getclnthandle: rpcbind on host, over nc,
// at version vers. It also returns the address used (targaddr).
func (a *app) rpcbindHandle(host string, nc *netconfig, vers uint32) (*client, netip.AddrPort, *createErr) {
	ip, ok := a.resolve(host, 0)
	if !ok {
		return nil, netip.AddrPort{}, &createErr{Stat: rpcN2AXlateFailure}
	}
	if nc.Family == pmap.FamilyLocal {
		return nil, netip.AddrPort{}, &createErr{Stat: rpcUnknownHost}
	}
	ap := netip.AddrPortFrom(ip, a.cfg.Port)
	c, ce := a.tliCreate(nc, ap, "", pmap.Prog, vers)
	return c, ap, ce
}

// rpcbindCreate is rpcinfo's clnt_rpcbind_create: the netids of
// "circuit_n", "circuit_v" then "datagram_v" in turn (visible netconfig
// rows: tcp, tcp6, tcp, tcp6, udp, udp6) until a handle is made.
func (a *app) rpcbindCreate(host string, vers uint32) (*client, netip.AddrPort, *createErr) {
	order := []string{"tcp", "tcp6", "tcp", "tcp6", "udp", "udp6"}
	last := &createErr{Stat: rpcUnknownProto}
	for _, id := range order {
		nc, _ := a.getnetconfigent(id)
		c, ap, ce := a.rpcbindHandle(host, nc, vers)
		if ce == nil {
			return c, ap, nil
		}
		last = ce
	}
	return nil, netip.AddrPort{}, last
}

// rpcbGetaddr is libtirpc's rpcb_getaddr (__rpcb_findaddr_timed): ask
// rpcbind on host over nc for the address of prog/vers with v4 GETADDR,
// then v3, then (inet) v2 GETPORT. It returns the service's address.
func (a *app) rpcbGetaddr(prog, vers uint32, nc *netconfig, host string) (netip.AddrPort, string, *createErr) {
	var rc *client
	var hint string
	if nc.Family == pmap.FamilyLocal {
		var ce *createErr
		rc, ce = a.localClient(pmap.Prog, pmap.Vers4)
		if ce != nil {
			return netip.AddrPort{}, "", ce
		}
	} else {
		ip, ok := a.resolve(host, nc.Family)
		if !ok {
			return netip.AddrPort{}, "", &createErr{Stat: rpcUnknownHost}
		}
		ap := netip.AddrPortFrom(ip, a.cfg.Port)
		var ce *createErr
		rc, ce = a.tliCreate(nc, ap, "", pmap.Prog, pmap.Vers4)
		if ce != nil {
			return netip.AddrPort{}, "", ce
		}
		hint = pmap.FormatUaddr(ap)
	}
	defer rc.close()
	args := pmap.AppendRPCB(nil, prog, vers, nc.Netid, hint, "libtirpc")
	var st clntStat
	var uaddr string
	for _, v := range []uint32{pmap.Vers4, pmap.Vers3} {
		rc.vers = v
		var res []byte
		res, st = rc.call(a.cfg.LookupTimeout, uint32(pmap.RPCBProcGetAddr), args)
		if st == rpcSuccess {
			var d xdr.Decoder
			d.Reset(res)
			uaddr = d.String(pmap.MaxString)
			if d.Err() != nil {
				return netip.AddrPort{}, "", &createErr{Stat: rpcCantDecodeRes}
			}
			break
		}
		if st != rpcProgVersMismatch && st != rpcProgUnavail && st != rpcCantDecodeArgs {
			break
		}
	}
	if st != rpcSuccess && (st == rpcProgVersMismatch || st == rpcProgUnavail || st == rpcCantDecodeArgs) &&
		nc.Family == pmap.FamilyInet {
		// The portmapper: v2 GETPORT.
		rc.vers = pmap.Vers2
		prot := uint32(pmap.IPProtoUDP)
		if nc.Proto == "tcp" {
			prot = pmap.IPProtoTCP
		}
		m := pmap.Mapping{Prog: prog, Vers: vers, Prot: prot}
		var res []byte
		res, st = rc.call(a.cfg.LookupTimeout, uint32(pmap.PmapProcGetPort), m.AppendXDR(nil))
		if st == rpcSuccess {
			var d xdr.Decoder
			d.Reset(res)
			port := d.Uint32()
			if d.Err() != nil {
				return netip.AddrPort{}, "", &createErr{Stat: rpcCantDecodeRes}
			}
			if port == 0 {
				return netip.AddrPort{}, "", &createErr{Stat: rpcProgNotRegist}
			}
			ip, _ := a.resolve(host, nc.Family)
			return netip.AddrPortFrom(ip, uint16(port)), "", nil
		}
	}
	if st != rpcSuccess {
		return netip.AddrPort{}, "", &createErr{Stat: st, Errno: rc.err.Errno, Call: rc.err}
	}
	if uaddr == "" {
		return netip.AddrPort{}, "", &createErr{Stat: rpcProgNotRegist}
	}
	if nc.Family == pmap.FamilyLocal {
		return netip.AddrPort{}, uaddr, nil
	}
	ap, ok := pmap.Uaddr2AddrPort(nc.Family, uaddr)
	if !ok {
		return netip.AddrPort{}, "", &createErr{Stat: rpcUnknownHost}
	}
	return ap, "", nil
}

// tpCreate is clnt_tp_create(host, prog, vers, nc): look the service up,
// then connect to it.
func (a *app) tpCreate(host string, prog, vers uint32, nc *netconfig) (*client, *createErr) {
	if nc.Semantics == pmap.NCTPIRaw {
		return nil, &createErr{Stat: rpcUnknownProto}
	}
	ap, path, ce := a.rpcbGetaddr(prog, vers, nc, host)
	if ce != nil {
		return nil, ce
	}
	return a.tliCreate(nc, ap, path, prog, vers)
}

package main

import (
	"context"
	"net"
	"net/netip"
	"os"

	"time"

	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
	"github.com/openrpcbind/rpcbind/xdr"
)

// bcastAllRPCBinds is the IPv6 "all rpcbind servers" link-local group
// libtirpc broadcasts to (RPCB_MULTICAST_ADDR).
const bcastAllRPCBinds = "ff02::202"

// bcastTarget is one destination of a broadcast.
type bcastTarget struct {
	dst  netip.AddrPort
	zone string
}

// broadcastTargets lists what libtirpc's __rpc_getbroadifs finds: the
// broadcast address of every up IPv4 interface that has one, and
// ff02::202 on every up IPv6 multicast interface.
func broadcastTargets(port uint16) (v4, v6 []bcastTarget) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, nil
	}
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, _ := ifi.Addrs()
		has6 := false
		for _, ad := range addrs {
			ipn, ok := ad.(*net.IPNet)
			if !ok {
				continue
			}
			if ip4 := ipn.IP.To4(); ip4 != nil && ifi.Flags&net.FlagBroadcast != 0 && len(ipn.Mask) >= 4 {
				m := ipn.Mask[len(ipn.Mask)-4:]
				var b [4]byte
				for i := range b {
					b[i] = ip4[i] | ^m[i]
				}
				v4 = append(v4, bcastTarget{dst: netip.AddrPortFrom(netip.AddrFrom4(b), port)})
			} else if ip4 == nil {
				has6 = true
			}
		}
		if has6 && ifi.Flags&net.FlagMulticast != 0 {
			v6 = append(v6, bcastTarget{dst: netip.AddrPortFrom(netip.MustParseAddr(bcastAllRPCBinds), port), zone: ifi.Name})
		}
	}
	return v4, v6
}

// broadcast is -b prog vers: rpc_broadcast of a NULL call through every
// rpcbind that forwards it (v3 CALLIT, plus v2 CALLIT over IPv4), printing
// each responder until the broadcast times out.
func (a *app) broadcast(args []string) {
	if len(args) != 2 {
		a.usageExit()
	}
	prog := uint32(a.getprognum(args[0]))
	vers := uint32(a.getvers(args[1]))
	v4, v6 := broadcastTargets(a.cfg.Port)
	if len(v4) == 0 && len(v6) == 0 {
		a.stderr.WriteString("rpcinfo: broadcast failed: " + sperrno(rpcUnknownProto) + "\n")
		a.exit(1)
	}
	cred := authSysDefault(a.cfg.Euid)
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.BcastTimeout)
	defer cancel()
	callArgs := (&pmap.CallArgs{Prog: prog, Vers: vers, Proc: 0}).AppendXDR(nil)
	xid := uint32(time.Now().UnixNano())
	type sock struct {
		pc      net.PacketConn
		targets []bcastTarget
	}
	var socks []sock
	if len(v4) > 0 {
		if pc, err := net.ListenPacket("udp4", ":0"); err == nil {
			setBroadcast(pc)
			socks = append(socks, sock{pc, v4})
		}
	}
	if len(v6) > 0 {
		if pc, err := net.ListenPacket("udp6", ":0"); err == nil {
			socks = append(socks, sock{pc, v6})
		}
	}
	results := make(chan string, 64)
	for _, s := range socks {
		defer s.pc.Close()
		v3 := append(rpc.AppendCall(nil, xid, pmap.Prog, pmap.Vers3, uint32(pmap.RPCBProcCallit), cred), callArgs...)
		v2 := append(rpc.AppendCall(nil, xid+1, pmap.Prog, pmap.Vers2, uint32(pmap.PmapProcCallit), cred), callArgs...)
		for _, t := range s.targets {
			dst := &net.UDPAddr{IP: t.dst.Addr().AsSlice(), Port: int(t.dst.Port()), Zone: t.zone}
			s.pc.WriteTo(v3, dst)
			if t.dst.Addr().Is4() {
				s.pc.WriteTo(v2, dst)
			}
		}
		go func(pc net.PacketConn) {
			buf := make([]byte, 9000)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				ua, ok := from.(*net.UDPAddr)
				if !ok {
					continue
				}
				ap := ua.AddrPort()
				if res, err := rpc.ParseReply(buf[:n], xid); err == nil {
					_ = res // v3 rmtcallres: the responder is the sender
				} else if res, err := rpc.ParseReply(buf[:n], xid+1); err == nil {
					var d xdr.Decoder
					d.Reset(res)
					port := d.Uint32()
					if d.Err() != nil {
						continue
					}
					ap = netip.AddrPortFrom(ap.Addr(), uint16(port))
				} else {
					continue
				}
				addr := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
				name := addr.Addr().String()
				if names, err := net.DefaultResolver.LookupAddr(ctx, name); err == nil && len(names) > 0 {
					name = trimDot(names[0])
				}
				select {
				case results <- pmap.FormatUaddr(addr) + "\t" + name + "\n":
				case <-ctx.Done():
					return
				}
			}
		}(s.pc)
	}
	for {
		select {
		case line := <-results:
			a.stdout.WriteString(line)
			a.stdout.Flush()
		case <-ctx.Done():
			a.exit(0)
		}
	}
}

func trimDot(s string) string {
	if len(s) > 1 && s[len(s)-1] == '.' {
		return s[:len(s)-1]
	}
	return s
}

// authSysDefault is authunix_create_default: AUTH_SYS with the host name,
// the effective uid and gid and the supplementary groups (at most 16).
func authSysDefault(euid int) *rpc.OpaqueAuth {
	host, _ := os.Hostname()
	if len(host) > rpc.MaxMachineName {
		host = host[:rpc.MaxMachineName]
	}
	s := rpc.AuthSysParams{Stamp: uint32(time.Now().Unix()), MachineName: []byte(host), UID: uint32(euid), GID: uint32(os.Getegid())}
	if gs, err := os.Getgroups(); err == nil {
		for _, g := range gs {
			if s.NGIDs == rpc.MaxGIDs {
				break
			}
			s.GIDs[s.NGIDs] = uint32(g)
			s.NGIDs++
		}
	}
	return &rpc.OpaqueAuth{Flavor: rpc.AuthSys, Body: s.AppendXDR(nil)}
}

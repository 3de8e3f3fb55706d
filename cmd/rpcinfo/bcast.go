package main

import (
	"context"
	"errors"
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

// bcastUnknown is what reply_proc prints for a name getnameinfo fails on.
const bcastUnknown = "unknown"

// bcastTarget is one destination of a broadcast.
type bcastTarget struct {
	dst  netip.AddrPort
	zone string
}

// bcastSock is one of rpc_broadcast's sockets: udp (IPv4) or udp6.
type bcastSock struct {
	pc      *net.UDPConn
	family  pmap.Family
	targets []bcastTarget
}

// bcastDatagram is what a socket received.
type bcastDatagram struct {
	s    *bcastSock
	from netip.AddrPort
	msg  []byte
}

// broadcast is -b prog vers: libtirpc's rpc_broadcast (clnt_bcast.c) of
// a NULL call, printing each responder as reply_proc does. -T is ignored,
// as by the reference (it passes no nettype). One XID serves every
// round: v3 CALLIT (RPCBPROC_CALLIT) to each target, then v2
// PMAPPROC_CALLIT with XID+1 on every UDP socket, IPv6 included. A round
// waits 4 s, then 8 s; every reply to the broadcast restarts the wait, a
// stray datagram ends the round early, exactly as the reference's poll
// loop. Unlike the reference, BcastLimit caps the whole run, so a host
// answering every few seconds cannot keep it alive for ever.
func (a *app) broadcast(args []string) {
	if len(args) != 2 {
		a.usageExit()
	}
	prog := uint32(a.getprognum(args[0]))
	vers := uint32(a.getvers(args[1]))
	v4, v6 := broadcastTargets(a.cfg.Port)
	var socks []*bcastSock
	if len(v4) > 0 {
		if pc, err := net.ListenUDP("udp4", nil); err == nil {
			setBroadcast(pc)
			socks = append(socks, &bcastSock{pc, pmap.FamilyInet, v4})
		}
	}
	if len(v6) > 0 {
		if pc, err := net.ListenUDP("udp6", nil); err == nil {
			socks = append(socks, &bcastSock{pc, pmap.FamilyInet6, v6})
		}
	}
	if len(socks) == 0 {
		st := rpcUnknownProto
		if len(v4)+len(v6) > 0 {
			st = rpcCantSend
		}
		a.stderr.WriteString("rpcinfo: broadcast failed: " + sperrno(st) + "\n")
		a.exit(1)
	}
	cred := authSysDefault(a.cfg.Euid)
	callArgs := (&pmap.CallArgs{Prog: prog, Vers: vers, Proc: 0}).AppendXDR(nil)
	xid := uint32(time.Now().UnixNano())
	v3 := append(rpc.AppendCall(nil, xid, pmap.Prog, pmap.Vers3, uint32(pmap.RPCBProcCallit), cred), callArgs...)
	v2 := append(rpc.AppendCall(nil, xid+1, pmap.Prog, pmap.Vers2, uint32(pmap.PmapProcCallit), cred), callArgs...)

	dgrams := make(chan bcastDatagram, 64)
	done := make(chan struct{})
	defer close(done)
	for _, s := range socks {
		defer s.pc.Close()
		go func() {
			for {
				buf := make([]byte, 65536)
				n, from, err := s.pc.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				select {
				case dgrams <- bcastDatagram{s, from, buf[:n]}:
				case <-done:
					return
				}
			}
		}()
	}

	limit := time.NewTimer(a.cfg.BcastLimit)
	defer limit.Stop()
	for wait := a.cfg.BcastInit; wait <= a.cfg.BcastWait; wait += wait {
		for _, s := range socks {
			for _, t := range s.targets {
				dst := &net.UDPAddr{IP: t.dst.Addr().AsSlice(), Port: int(t.dst.Port()), Zone: t.zone}
				s.pc.WriteTo(v3, dst)
				s.pc.WriteTo(v2, dst)
			}
		}
	recv:
		for {
			timer := time.NewTimer(wait)
			select {
			case d := <-dgrams:
				timer.Stop()
				if !a.bcastReply(d, xid) {
					break recv // not ours: the reference moves on to the next round
				}
			case <-timer.C:
				break recv
			case <-limit.C:
				timer.Stop()
				a.exit(0)
			}
		}
	}
	a.exit(0)
}

// bcastReply handles one datagram like the reference's receive loop and
// reports false for one that is not a reply to the broadcast (shorter
// than an XID, or another XID). Replies that fail or do not decode are
// dropped silently; a SUCCESS is printed as "uaddr\tname".
func (a *app) bcastReply(d bcastDatagram, xid uint32) bool {
	if len(d.msg) < 4 {
		return false
	}
	got := uint32(d.msg[0])<<24 | uint32(d.msg[1])<<16 | uint32(d.msg[2])<<8 | uint32(d.msg[3])
	if got != xid && got != xid+1 {
		return false
	}
	res, err := rpc.ParseReply(d.msg, got)
	if err != nil {
		return true
	}
	var who netip.AddrPort
	var dec xdr.Decoder
	dec.Reset(res)
	if got == xid {
		// rpcb_rmtcallres: the responder's uaddr of the service, which
		// the reference converts with the socket's netconfig.
		uaddr := dec.String(pmap.MaxString)
		dec.Uint32() // results_len; the NULL results themselves are not read
		if dec.Err() != nil {
			return true
		}
		ap, ok := pmap.Uaddr2AddrPort(d.s.family, uaddr)
		if !ok {
			return true // the reference would dereference NULL here
		}
		who = ap
	} else {
		// rmtcallres: the port, paired with the sender's address.
		port := dec.Uint32()
		dec.Uint32() // resultslen
		if dec.Err() != nil {
			return true
		}
		who = netip.AddrPortFrom(d.from.Addr(), uint16(port))
	}
	if d.s.family == pmap.FamilyInet {
		who = netip.AddrPortFrom(who.Addr().Unmap(), who.Port())
	}
	name := a.nameOf(who.Addr())
	who = netip.AddrPortFrom(who.Addr().WithZone(""), who.Port()) // taddr2uaddr drops the scope
	a.stdout.WriteString(pmap.FormatUaddr(who) + "\t" + name + "\n")
	a.stdout.Flush()
	return true
}

// nameOf is getnameinfo(3) without flags: the host's name, its numeric
// form when no name exists, and "unknown" when the lookup itself fails
// (for instance no name server can be reached).
func (a *app) nameOf(ip netip.Addr) string {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.LookupTimeout)
	defer cancel()
	names, err := net.DefaultResolver.LookupAddr(ctx, ip.String())
	var de *net.DNSError
	switch {
	case err == nil && len(names) > 0:
		return trimDot(names[0])
	case err == nil, errors.As(err, &de) && de.IsNotFound:
		return ip.String()
	}
	return bcastUnknown
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

package main

import (
	"net"
	"net/netip"
	"strconv"

	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
	"github.com/openrpcbind/rpcbind/xdr"
)

// minVers and maxVers bound version discovery (MIN_VERS, MAX_VERS).
const (
	minVers = 0
	maxVers = 0xffffffff
)

// decodeErr is the error of a SUCCESS reply whose results do not decode
// (a truncated or over-long list): RPC_CANTDECODERES.
func decodeErr(c *client, err error) clntStat {
	c.err = rpcErr{Stat: rpcCantDecodeRes, Detail: err.Error()}
	return rpcCantDecodeRes
}

// pmapDump is -p [host]: a v2 DUMP.
func (a *app) pmapDump(args []string) {
	if len(args) > 1 {
		a.usageExit()
	}
	var c *client
	host := "(null)" // the reference prints a NULL host with %s
	if len(args) == 1 {
		host = args[0]
		c = a.ipGetclient(host, pmap.Prog, pmap.Vers2, "tcp")
	} else {
		var ce *createErr
		c, ce = a.localClient(pmap.Prog, pmap.Vers2)
		if ce != nil {
			if ce.Stat == rpcUnknownProto { // RPC_TLIERROR is reported as a portmapper failure
				ce = &createErr{Stat: rpcPmapFailure, Call: rpcErr{Stat: rpcFailed}}
			}
			a.stderr.WriteString(ce.spcreateerror("rpcinfo: can't contact portmapper") + "\n")
			a.exit(1)
		}
	}
	defer c.close()
	res, st := c.call(a.cfg.DumpTimeout, uint32(pmap.PmapProcDump), nil)
	var ms []pmap.Mapping
	if st == rpcSuccess {
		var err error
		if ms, err = pmap.DecodeDumpV2(res); err != nil {
			st = decodeErr(c, err)
		}
	}
	if st != rpcSuccess {
		if st == rpcProgVersMismatch || st == rpcProgUnavail {
			if c.err.Low > pmap.Vers2 {
				a.stderr.WriteString(host + " does not support portmapper.  Try rpcinfo " + host + " instead\n")
			}
			a.exit(1)
		}
		a.stderr.WriteString(c.err.sperror("rpcinfo: can't contact portmapper") + "\n")
		a.exit(1)
	}
	a.stdout.WriteString(formatPmapDump(ms, a.rpcdb()))
}

// ipGetclient is the reference's ip_getclient: the first netconfig row of
// proto whose rpcbind knows the service, then a handle to the service.
func (a *app) ipGetclient(host string, prog, vers uint32, proto string) *client {
	saved := rpcSuccess
	for i := range netconfigs {
		nc := &netconfigs[i]
		if nc.Proto != proto {
			continue
		}
		ap, path, ce := a.rpcbGetaddr(prog, vers, nc, host)
		if ce == nil {
			c, ce := a.tliCreate(nc, ap, path, prog, vers)
			if ce != nil {
				a.stderr.WriteString(ce.spcreateerror(host) + "\n")
				a.exit(1)
			}
			return c
		}
		if ce.Stat != rpcUnknownHost {
			a.stderr.WriteString(ce.spcreateerror(host) + "\n")
			a.exit(1)
		}
		saved = ce.Stat
	}
	if saved != rpcSuccess {
		ce := createErr{Stat: saved}
		a.stderr.WriteString(ce.spcreateerror(host) + "\n")
	} else {
		a.stderr.WriteString("Cannot find suitable transport for protocol " + proto + "\n")
	}
	a.exit(1)
	return nil
}

// rpcbDump is rpcinfo [-s] [-T netid] [host]: a v3 DUMP, with the
// reference's fallbacks to v4 (low == 4) and v2 (high == 2).
func (a *app) rpcbDump(short bool, netid *string, args []string) {
	if len(args) > 1 {
		a.usageExit()
	}
	var c *client
	var ce *createErr
	if len(args) == 1 {
		if netid == nil {
			c, _, ce = a.rpcbindCreate(args[0], pmap.Vers3)
		} else {
			nc, ok := a.getnetconfigent(*netid)
			if !ok {
				a.stderr.WriteString("rpcinfo: invalid transport: Netid not found in netconfig database\n")
				a.exit(1)
			}
			c, _, ce = a.rpcbindHandle(args[0], nc, pmap.Vers3)
		}
	} else {
		c, ce = a.localClient(pmap.Prog, pmap.Vers3)
	}
	if ce != nil {
		a.stderr.WriteString(ce.spcreateerror("rpcinfo: can't contact rpcbind") + "\n")
		a.exit(1)
	}
	defer c.close()
	es, st := a.dumpV3(c)
	if st == rpcProgVersMismatch || st == rpcProgUnavail {
		switch {
		case c.err.Low == pmap.Vers4:
			c.vers = pmap.Vers4
			es, st = a.dumpV3(c)
		case c.err.High == pmap.Vers2:
			c.vers = pmap.Vers2
			res, st2 := c.call(a.cfg.DumpTimeout, uint32(pmap.PmapProcDump), nil)
			st = st2
			if st == rpcSuccess {
				ms, err := pmap.DecodeDumpV2(res)
				if err != nil {
					st = decodeErr(c, err)
				} else {
					es = pmapToRPCB(ms)
				}
			}
		default:
			// Neither: the reference prints an empty table.
			es, st = nil, rpcSuccess
		}
	}
	if st != rpcSuccess {
		a.stderr.WriteString(c.err.sperror("rpcinfo: can't contact rpcbind: ") + "\n")
		a.exit(1)
	}
	if short {
		a.stdout.WriteString(formatDumpShort(es, a.rpcdb()))
	} else {
		a.stdout.WriteString(formatDump(es, a.rpcdb()))
	}
}

func (a *app) dumpV3(c *client) ([]pmap.RPCBEntry, clntStat) {
	res, st := c.call(a.cfg.DumpTimeout, uint32(pmap.RPCBProcDump), nil)
	if st != rpcSuccess {
		return nil, st
	}
	es, err := pmap.DecodeDumpV3(res)
	if err != nil {
		return nil, decodeErr(c, err)
	}
	return es, rpcSuccess
}

// addrList is -l [-T netid] host prog vers: v4 GETADDRLIST.
func (a *app) addrList(netid *string, args []string) {
	if len(args) != 3 {
		a.usageExit()
	}
	host := args[0]
	var c *client
	var target netip.AddrPort
	var ce *createErr
	if netid == nil {
		c, target, ce = a.rpcbindCreate(host, pmap.Vers4)
	} else {
		nc, ok := a.getnetconfigent(*netid)
		if !ok {
			a.stderr.WriteString("rpcinfo: invalid transport: Netid not found in netconfig database\n")
			a.exit(1)
		}
		c, target, ce = a.rpcbindHandle(host, nc, pmap.Vers4)
	}
	if ce != nil {
		a.stderr.WriteString(ce.spcreateerror("rpcinfo: can't contact rpcbind") + "\n")
		a.exit(1)
	}
	defer c.close()
	prog := uint32(a.getprognum(args[1]))
	vers := uint32(a.getvers(args[2]))
	// r_addr: the address we reached rpcbind at, to help it answer.
	uaddr := ""
	if target.IsValid() {
		uaddr = pmap.FormatUaddr(netip.AddrPortFrom(target.Addr().Unmap(), target.Port()))
		if c.nc.Family == pmap.FamilyInet6 {
			uaddr = pmap.FormatUaddr(target)
		}
	}
	args4 := pmap.AppendRPCB(nil, prog, vers, c.nc.Netid, uaddr, "")
	res, st := c.call(a.cfg.DumpTimeout, uint32(pmap.RPCBProcGetAddrList), args4)
	var es []pmap.Entry
	if st == rpcSuccess {
		var err error
		if es, err = pmap.DecodeEntryList(res); err != nil {
			decodeErr(c, err)
			st = rpcCantDecodeRes
		}
	}
	if st != rpcSuccess {
		a.stderr.WriteString(c.err.sperror("rpcinfo: can't contact rpcbind: ") + "\n")
		a.exit(1)
	}
	a.stdout.WriteString(formatAddrList(prog, vers, es, a.rpcdb()))
}

// getStat is -m [host]: v4 GETSTAT.
func (a *app) getStat(args []string) {
	var c *client
	var ce *createErr
	if len(args) >= 1 {
		c, _, ce = a.rpcbindCreate(args[0], pmap.Vers4)
	} else {
		c, ce = a.localClient(pmap.Prog, pmap.Vers4)
	}
	if ce != nil {
		a.stderr.WriteString(ce.spcreateerror("rpcinfo: can't contact rpcbind") + "\n")
		a.exit(1)
	}
	defer c.close()
	res, st := c.call(a.cfg.DumpTimeout, uint32(pmap.RPCBProcGetStat), nil)
	var stats [pmap.NumStatVers]pmap.Stat
	if st == rpcSuccess {
		var err error
		if stats, err = pmap.DecodeStatByVers(res); err != nil {
			st = decodeErr(c, err)
		}
	}
	if st != rpcSuccess {
		a.stderr.WriteString(c.err.sperror("rpcinfo: can't contact rpcbind: ") + "\n")
		a.exit(1)
	}
	a.stdout.WriteString(formatStat(&stats, a.rpcdb()))
}

// ping sends a NULL call to c at vers.
func (a *app) ping(c *client, vers uint32) clntStat {
	c.vers = vers
	_, st := c.call(a.cfg.PingTimeout, 0, nil)
	return st
}

// pstatus prints the outcome of the last call, as the reference: the
// error on stderr and "not available" on stdout, or "ready and waiting".
func (a *app) pstatus(c *client, prog, vers string) bool {
	if c.err.Stat != rpcSuccess {
		a.stderr.WriteString(c.err.sperror("rpcinfo") + "\n")
		a.stdout.WriteString("program " + prog + " version " + vers + " is not available\n")
		return false
	}
	a.stdout.WriteString("program " + prog + " version " + vers + " ready and waiting\n")
	return true
}

// discover asks for version 0 (and, if that answers, MAX_VERS) and
// returns the range of a PROG_MISMATCH; it exits after printing the
// failure otherwise. reping recreates the handle for a version when the
// mode needs a fresh one (-a).
func (a *app) discover(c *client, progStr string) (lo, hi uint64) {
	st := a.ping(c, minVers)
	switch st {
	case rpcProgVersMismatch:
		return uint64(c.err.Low), uint64(c.err.High)
	case rpcSuccess:
		st = a.ping(c, maxVers)
		switch st {
		case rpcProgVersMismatch:
			return uint64(c.err.Low), uint64(c.err.High)
		case rpcSuccess:
			return 0, maxVers
		}
		a.pstatus(c, progStr, ulong(maxVers))
		a.exit(1)
	}
	a.pstatus(c, progStr, "0")
	a.exit(1)
	return 0, 0
}

// pingRange pings every version in lo..hi. The counter is 64 bits wide, so
// a range reaching MAX_VERS ends (the C loop over a u_int32_t would not).
func (a *app) pingRange(c *client, progStr string, lo, hi uint64) bool {
	ok := true
	for v := lo; v <= hi; v++ {
		a.ping(c, uint32(v))
		if !a.pstatus(c, progStr, ulong(v)) {
			ok = false
		}
		a.stdout.Flush()
	}
	return ok
}

// ipPing is -u/-t host prog [vers].
func (a *app) ipPing(proto string, args []string) {
	if len(args) < 2 || len(args) > 3 {
		a.usageExit()
	}
	host := args[0]
	prog := a.getprognum(args[1])
	vers := uint64(minVers)
	if len(args) == 3 {
		vers = a.getvers(args[2])
	}
	c := a.ipGetclient(host, uint32(prog), uint32(vers), proto)
	defer c.close()
	progStr := ulong(prog)
	if len(args) == 3 {
		a.ping(c, uint32(vers))
		if !a.pstatus(c, progStr, ulong(vers)) {
			a.exit(1)
		}
		return
	}
	lo, hi := a.discover(c, progStr)
	if !a.pingRange(c, progStr, lo, hi) {
		a.exit(1)
	}
}

// progPing is -T netid host prog [vers].
func (a *app) progPing(netid *string, args []string) {
	if len(args) < 2 || len(args) > 3 || netid == nil {
		a.usageExit()
	}
	prog := uint32(a.getprognum(args[1]))
	vers := uint32(minVers)
	if len(args) == 3 {
		vers = uint32(a.getvers(args[2]))
	}
	nc, ok := a.getnetconfigent(*netid)
	if !ok {
		a.stderr.WriteString("rpcinfo: Could not find " + *netid + "\n")
		a.exit(1)
	}
	c, ce := a.tpCreate(args[0], prog, vers, nc)
	if ce != nil {
		a.stderr.WriteString(ce.spcreateerror("rpcinfo") + "\n")
		a.exit(1)
	}
	defer c.close()
	a.pingVersions(c, prog, vers, len(args) == 3)
}

// addrPing is -a uaddr -T netid prog [vers]: no rpcbind lookup.
func (a *app) addrPing(address string, netid *string, args []string) {
	if len(args) < 1 || len(args) > 2 || netid == nil {
		a.usageExit()
	}
	nc, ok := a.getnetconfigent(*netid)
	if !ok {
		a.stderr.WriteString("rpcinfo: Could not find " + *netid + "\n")
		a.exit(1)
	}
	prog := uint32(a.getprognum(args[0]))
	vers := uint32(minVers)
	if len(args) == 2 {
		vers = uint32(a.getvers(args[1]))
	}
	var ap netip.AddrPort
	path := ""
	switch nc.Family {
	case pmap.FamilyLocal:
		if address == "" || nc.Semantics == pmap.NCTPIRaw {
			ok = false
		}
		path = address
	default:
		ap, ok = pmap.Uaddr2AddrPort(nc.Family, address)
		if nc.Semantics == pmap.NCTPIRaw {
			ok = false
		}
	}
	if !ok {
		a.stderr.WriteString(a.short + ": rpcinfo: no address for client handle\n")
		a.exit(1)
	}
	c, ce := a.tliCreate(nc, ap, path, prog, vers)
	if ce != nil {
		a.stderr.WriteString(ce.spcreateerror("rpcinfo") + "\n")
		a.exit(1)
	}
	defer c.close()
	a.pingVersions(c, prog, vers, len(args) == 2)
}

// pingVersions pings vers when it was given, else every version the
// server's PROG_MISMATCH range names; a failure exits 1.
func (a *app) pingVersions(c *client, prog, vers uint32, given bool) {
	progStr := u32(prog)
	if given {
		a.ping(c, vers)
		if !a.pstatus(c, progStr, u32(vers)) {
			a.exit(1)
		}
		return
	}
	lo, hi := a.discover(c, progStr)
	if !a.pingRange(c, progStr, lo, hi) {
		a.exit(1)
	}
}

// deleteReg is -d [-T netid] prog vers: rpcb_unset.
func (a *app) deleteReg(netid *string, args []string) {
	if len(args) != 2 {
		a.usageExit()
	}
	id := ""
	if netid != nil {
		nc, ok := a.getnetconfigent(*netid)
		if !ok {
			a.stderr.WriteString("rpcinfo: netid " + *netid + " not supported\n")
			a.exit(1)
		}
		id = nc.Netid
	}
	// The reference evaluates its arguments right to left.
	vers := uint32(a.getvers(args[1]))
	prog := uint32(a.getprognum(args[0]))
	if !a.rpcbUnset(prog, vers, id) {
		a.stderr.WriteString("rpcinfo: Could not delete registration for prog " + args[0] + " version " + args[1] + "\n")
		a.exit(1)
	}
}

// rpcbUnset is libtirpc's rpcb_unset: v3 UNSET over the local socket, or
// v4 UNSET over tcp6 ::1 then tcp 127.0.0.1 (from a reserved port when
// root) when the socket cannot be reached.
func (a *app) rpcbUnset(prog, vers uint32, netid string) bool {
	args := pmap.AppendRPCB(nil, prog, vers, netid, "", strconv.Itoa(a.cfg.Euid))
	c, ce := a.localClient(pmap.Prog, pmap.Vers3)
	if ce != nil {
		c = a.loopbackRPCB(pmap.Vers4)
		if c == nil {
			return false
		}
	}
	defer c.close()
	res, st := c.call(a.cfg.LookupTimeout, uint32(pmap.RPCBProcUnset), args)
	if st != rpcSuccess {
		return false
	}
	var d xdr.Decoder
	d.Reset(res)
	ok := d.Bool()
	return d.Err() == nil && ok
}

// loopbackRPCB connects to rpcbind on ::1, else 127.0.0.1, over TCP.
func (a *app) loopbackRPCB(vers uint32) *client {
	for _, host := range []string{"::1", "127.0.0.1"} {
		nc := &netconfigs[3]
		if host == "127.0.0.1" {
			nc = &netconfigs[1]
		}
		target := net.JoinHostPort(host, strconv.Itoa(int(a.cfg.Port)))
		opt := rpc.ClientOptions{Timeout: a.cfg.ConnectTimeout, MaxReply: maxReply}
		if a.cfg.Euid == 0 {
			// bindresvport: the daemon takes a loopback caller on a
			// reserved port for the superuser.
			for p := 1023; p >= 600; p-- {
				opt.LocalAddr = net.JoinHostPort(host, strconv.Itoa(p))
				if rc, err := rpc.Dial(nc.network(), target, opt); err == nil {
					return &client{c: rc, nc: nc, addr: target, prog: pmap.Prog, vers: vers}
				} else if errnoOf(err, 0) != 98 { // anything but EADDRINUSE
					break
				}
			}
			opt.LocalAddr = ""
		}
		if rc, err := rpc.Dial(nc.network(), target, opt); err == nil {
			return &client{c: rc, nc: nc, addr: target, prog: pmap.Prog, vers: vers}
		}
	}
	return nil
}

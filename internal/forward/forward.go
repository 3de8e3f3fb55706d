package forward

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
	"github.com/openrpcbind/rpcbind/xdr"
)

// Limits of the reference's forwarder (rpcb_svc_com.c).
const (
	NumSlots = 64                // NFORWARD: calls in flight
	MaxAge   = 300 * time.Second // MAXTIME_OFF: a slot older than this is reclaimed
	MaxSend  = 8800              // UDPMSGSIZE: the forwarded call and the relayed reply
	MaxRecv  = 65536             // RPC_BUF_MAX: a service's reply
)

// Errors of Forward; the service maps them to its reply.
var (
	// ErrDuplicate: the same caller XID is already in flight; stay silent.
	ErrDuplicate = errors.New("forward: duplicate request")
	// ErrCred: a credential flavor that cannot be re-created; INDIRECT
	// answers AUTH_TOOWEAK.
	ErrCred = errors.New("forward: credential flavor not forwardable")
	// ErrTooLarge: the forwarded call exceeds MaxSend; INDIRECT answers
	// SYSTEM_ERR.
	ErrTooLarge = errors.New("forward: call too large")
	// ErrClosed: the forwarder was closed.
	ErrClosed = errors.New("forward: closed")
)

// Call is one remote call to relay.
type Call struct {
	XID       uint32         // the caller's XID, used again in the reply
	Caller    netip.AddrPort // where the reply goes
	Local     netip.AddrPort // the address the call arrived on (for Config.Reply)
	Netid     string         // arrival netid: "udp" or "udp6"
	LocalVers uint32         // 2: the reply carries a port; 3, 4: a uaddr
	Indirect  bool           // INDIRECT: failures are reported as SYSTEM_ERR

	Prog, Vers, Proc uint32
	Cred             rpc.OpaqueAuth // AUTH_NONE or AUTH_SYS
	Args             []byte         // opaque arguments; copied before Forward returns
	Dst              netip.AddrPort // the service: loopback + its registered port
	Uaddr            string         // the service's address merged for the caller
}

// Config wires a Forwarder.
type Config struct {
	// Now is the clock for XIDs and slot ages; nil is time.Now.
	Now func() time.Time
	// Reply sends a relayed reply to the original caller. nil sends it from
	// the forwarding socket, as the reference does; since that socket is bound
	// to loopback, replies to other hosts then go through a socket of the
	// family opened on first need.
	Reply func(netid string, to, from netip.AddrPort, msg []byte) error
	// Err receives errors of the background readers; nil drops them.
	Err func(error)
	// Allow is asked before a relayed reply is sent (UDP amplification
	// control, ratelimit.Limiter.Allow); reqLen is the size of the
	// caller's call as far as the forwarder knows it (header, credential,
	// call_args), a lower bound. false drops the reply. nil sends all.
	Allow func(to netip.AddrPort, reqLen, replyLen int) bool
}

type slot struct {
	active    bool
	callerXID uint32
	caller    netip.AddrPort
	local     netip.AddrPort
	netid     string
	fwdXID    uint32
	uaddr     string
	indirect  bool
	vers      uint32
	time      int64 // Unix seconds, as the reference's time_t
	reqLen    int   // lower bound of the caller's call size (Config.Allow)
}

// Forwarder relays remote calls. It is safe for concurrent use.
type Forwarder struct {
	cfg Config

	mu      sync.Mutex
	slots   [NumSlots]slot
	lastXID uint32
	conns   [2]*net.UDPConn // forwarding sockets: 0 IPv4, 1 IPv6
	replyC  [2]*net.UDPConn // unbound reply sockets for non-loopback callers
	closed  bool
	wg      sync.WaitGroup
}

// New returns a Forwarder. No socket is opened before the first call.
func New(cfg Config) *Forwarder {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Forwarder{cfg: cfg}
}

func famIndex(netid string) int {
	if netid == pmap.NetidUDP6 {
		return 1
	}
	return 0
}

// Forward registers c in a slot and sends the call to c.Dst. The reply, if
// the service answers, is relayed asynchronously.
func (f *Forwarder) Forward(c *Call) error {
	var cred *rpc.OpaqueAuth
	now := f.cfg.Now()
	switch c.Cred.Flavor {
	case rpc.AuthNone:
	case rpc.AuthSys:
		// authunix_create: same machine name, uid, gid and gids, a fresh stamp.
		var p rpc.AuthSysParams
		if err := p.Decode(c.Cred.Body); err == nil {
			p.Stamp = uint32(now.Unix())
			oa := p.OpaqueAuth()
			cred = &oa
		}
	default:
		return ErrCred
	}
	fi := famIndex(c.Netid)
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return ErrClosed
	}
	conn, err := f.conn(fi)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	xid, j, err := f.register(c, now.Unix())
	f.mu.Unlock()
	if err != nil {
		return err
	}
	msg := rpc.AppendCall(make([]byte, 0, 128+len(c.Args)), xid, c.Prog, c.Vers, c.Proc, cred)
	msg = xdr.AppendFixedOpaque(msg, c.Args)
	if len(msg) > MaxSend {
		f.free(j, xid)
		return ErrTooLarge
	}
	if _, err := conn.WriteToUDPAddrPort(msg, c.Dst); err != nil {
		f.free(j, xid)
		return fmt.Errorf("forward: send to %v: %w", c.Dst, err)
	}
	return nil
}

// Sizes of a call message without its variable parts: xid, mtype, rpcvers,
// prog, vers, proc, cred flavor+length, verf flavor+length (RFC 5531 §9);
// call_args prog, vers, proc, args length (RFC 1833).
const (
	minCallHeader  = 40
	callArgsHeader = 16
)

// register is forward_register; f.mu is held.
func (f *Forwarder) register(c *Call, now int64) (xid uint32, j int, err error) {
	if f.lastXID == 0 {
		f.lastXID = uint32(now * NumSlots)
	}
	entry := -1
	minTime := f.slots[0].time
	for i := range f.slots {
		s := &f.slots[i]
		if s.active {
			if s.callerXID == c.XID && s.indirect == c.Indirect && s.vers == c.LocalVers && s.caller == c.Caller {
				s.time = now
				return 0, 0, ErrDuplicate
			}
			if now-s.time > int64(MaxAge/time.Second) {
				s.active = false
			}
		}
		if entry == -1 {
			if !s.active {
				entry = i
			} else if s.time < minTime {
				j = i
				minTime = s.time
			}
		}
	}
	if entry != -1 {
		j = entry
	}
	f.lastXID += NumSlots
	if f.lastXID+NumSlots <= NumSlots { // never a zero XID
		f.lastXID = NumSlots
	}
	xid = f.lastXID + uint32(j)
	f.slots[j] = slot{
		active: true, callerXID: c.XID, caller: c.Caller, local: c.Local, netid: c.Netid,
		fwdXID: xid, uaddr: c.Uaddr, indirect: c.Indirect, vers: c.LocalVers, time: now,
		reqLen: minCallHeader + len(c.Cred.Body) + callArgsHeader + len(c.Args),
	}
	return xid, j, nil
}

func (f *Forwarder) free(j int, xid uint32) {
	f.mu.Lock()
	if f.slots[j].active && f.slots[j].fwdXID == xid {
		f.slots[j].active = false
	}
	f.mu.Unlock()
}

// conn returns the forwarding socket of a family, opening it on first use;
// f.mu is held.
func (f *Forwarder) conn(fi int) (*net.UDPConn, error) {
	if c := f.conns[fi]; c != nil {
		return c, nil
	}
	network, laddr := "udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	if fi == 1 {
		network, laddr = "udp6", &net.UDPAddr{IP: net.IPv6loopback}
	}
	c, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, fmt.Errorf("forward: open forwarding socket: %w", err)
	}
	f.conns[fi] = c
	f.wg.Add(1)
	go f.read(c)
	return c, nil
}

// LocalAddr returns the address of the forwarding socket of netid's family,
// or an invalid AddrPort if it is not open.
func (f *Forwarder) LocalAddr(netid string) netip.AddrPort {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.conns[famIndex(netid)]; c != nil {
		return c.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	return netip.AddrPort{}
}

// read is handle_reply for one forwarding socket.
func (f *Forwarder) read(c *net.UDPConn) {
	defer f.wg.Done()
	buf := make([]byte, MaxRecv)
	var out []byte
	for {
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			f.report(err)
			continue
		}
		out = f.handle(c, buf[:n], out[:0])
	}
}

func (f *Forwarder) report(err error) {
	if f.cfg.Err != nil {
		f.cfg.Err(err)
	}
}

// handle relays one reply from a service; it returns out for reuse.
func (f *Forwarder) handle(c *net.UDPConn, msg, out []byte) []byte {
	if len(msg) < 4 {
		return out
	}
	xid := uint32(msg[0])<<24 | uint32(msg[1])<<16 | uint32(msg[2])<<8 | uint32(msg[3])
	res, err := rpc.ParseReply(msg, xid)
	var re *rpc.ReplyError
	if err != nil && !errors.As(err, &re) {
		return out // not a reply at all (xdr_replymsg failed)
	}
	f.mu.Lock()
	s := &f.slots[xid%NumSlots]
	if !s.active || s.fwdXID != xid {
		f.mu.Unlock()
		return out
	}
	sl := *s
	s.active = false
	f.mu.Unlock()

	if err != nil {
		if !sl.indirect {
			return out // CALLIT and BCAST stay silent
		}
		out = rpc.AppendAccepted(out, sl.callerXID, rpc.SystemErr)
	} else {
		out = rpc.AppendAccepted(out, sl.callerXID, rpc.Success)
		var ok bool
		out, ok = appendResult(out, sl, res)
		if !ok || len(out) > MaxSend {
			return out[:0] // the reference's svc_sendreply fails: nothing is sent
		}
	}
	if f.cfg.Allow != nil && !f.cfg.Allow(sl.caller, sl.reqLen, len(out)) {
		return out
	}
	if err := f.send(c, &sl, out); err != nil {
		f.report(err)
	}
	return out
}

// appendResult is xdr_rmtcall_result: v2 a port scanned from the merged
// uaddr ("%d.%d.%d.%d.%d.%d"), v3/v4 the uaddr; then the results.
func appendResult(b []byte, sl slot, res []byte) ([]byte, bool) {
	if sl.uaddr == "" {
		return b, false // the merge failed: m_uaddr was NULL
	}
	if sl.vers == pmap.Vers2 {
		port, ok := scanPort(sl.uaddr)
		if !ok {
			return b, false
		}
		return pmap.AppendCallResult(b, port, res), true
	}
	return pmap.AppendRmtCallRes(b, sl.uaddr, res), true
}

// scanPort is sscanf(uaddr, "%d.%d.%d.%d.%d.%d") followed by
// ((p1 & 0xff) << 8) + (p2 & 0xff): six decimal fields, or failure.
func scanPort(s string) (uint32, bool) {
	var v [6]int64
	i := 0
	for k := 0; k < 6; k++ {
		if k > 0 {
			if i >= len(s) || s[i] != '.' {
				return 0, false
			}
			i++
		}
		for i < len(s) && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')) {
			i++
		}
		neg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			neg = s[i] == '-'
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			v[k] = v[k]*10 + int64(s[i]-'0')
			if v[k] > 1<<32 {
				v[k] = 1 << 32
			}
			i++
		}
		if i == start {
			return 0, false
		}
		if neg {
			v[k] = -v[k]
		}
	}
	return uint32((v[4]&0xff)<<8 + v[5]&0xff), true
}

// send delivers a reply to the original caller.
func (f *Forwarder) send(c *net.UDPConn, sl *slot, msg []byte) error {
	if f.cfg.Reply != nil {
		return f.cfg.Reply(sl.netid, sl.caller, sl.local, msg)
	}
	to := sl.caller
	if to.Addr().Unmap().IsLoopback() {
		_, err := c.WriteToUDPAddrPort(msg, to)
		return err
	}
	// A loopback-bound socket cannot reach other hosts.
	fi := famIndex(sl.netid)
	f.mu.Lock()
	rc := f.replyC[fi]
	if rc == nil && !f.closed {
		network := "udp4"
		if fi == 1 {
			network = "udp6"
		}
		var err error
		rc, err = net.ListenUDP(network, nil)
		if err != nil {
			f.mu.Unlock()
			return fmt.Errorf("forward: open reply socket: %w", err)
		}
		f.replyC[fi] = rc
	}
	f.mu.Unlock()
	if rc == nil {
		return ErrClosed
	}
	_, err := rc.WriteToUDPAddrPort(msg, to)
	return err
}

// Close closes the sockets and waits for the readers.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	f.closed = true
	var cs []*net.UDPConn
	for _, c := range append(f.conns[:], f.replyC[:]...) {
		if c != nil {
			cs = append(cs, c)
		}
	}
	f.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
	f.wg.Wait()
	return nil
}

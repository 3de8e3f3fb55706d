package guard

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openrpcbind/rpcbind/internal/registry"
	"github.com/openrpcbind/rpcbind/pmap"
)

// DefaultPruneInterval is the period of the dead-registration sweep: short
// enough that a restarted service finds its program number free again in
// seconds, long enough that the sweep (one read of /proc/net/tcp{,6},
// udp{,6} and of /proc/PID/stat per tracked registration) costs nothing.
const DefaultPruneInterval = 10 * time.Second

// PruneMisses is the number of consecutive sweeps in which a TCP
// registration's port must be found not listening before it is removed: a
// service may register a moment before it calls listen().
const PruneMisses = 2

// PruneConfig tunes a Pruner; zero fields take the defaults.
type PruneConfig struct {
	Interval time.Duration
	Log      func(msg string)
	// Alive reports whether the process that registered still runs
	// (default: /proc/PID/stat exists, is not a zombie, and has the start
	// time seen at SET time, so a reused pid does not count).
	Alive func(pid int, start uint64) bool
	// Ports returns the TCP ports in LISTEN state and the bound UDP ports
	// of this network namespace (default: /proc/net/{tcp,tcp6,udp,udp6}).
	Ports func() (tcp, udp map[uint16]bool, err error)
	// Local reports whether a is an address of this host besides loopback
	// and the unspecified address (default: net.InterfaceAddrs).
	Local func(a netip.Addr) bool
}

// Pruner removes dead registrations (off by default; --prune):
//
//   - an entry SET over the local socket whose registering process (pid and
//     start time from SO_PEERCRED at SET time) is gone, unless its TCP/UDP
//     port is still bound on this host (a child serves it);
//   - any tcp/tcp6 entry on an address of this host whose port has not
//     been listening for PruneMisses sweeps.
//
// Entries of program 100000 are never touched. Removal goes through
// Table.Unset with the entry's owner, so the journal and the statistics
// see an ordinary UNSET.
type Pruner struct {
	g   *Guard
	cfg PruneConfig

	mu     sync.Mutex
	procs  map[pruneKey]procID
	misses map[pruneKey]int

	stop func()        // ends the sweep loop (StartPruner); nil without one
	done chan struct{} // closed when the sweep loop has returned
}

type pruneKey struct {
	prog, vers uint32
	netid      string // lower case
}

type procID struct {
	pid   int
	start uint64
	addr  string // the address registered, to tell a re-SET by someone else
}

func keyOf(e registry.Entry) pruneKey {
	return pruneKey{e.Prog, e.Vers, strings.ToLower(e.Netid)}
}

// StartPruner turns pruning on: SETs over the local socket are tracked from
// now on and a sweep runs every cfg.Interval until ctx ends or Stop.
func (g *Guard) StartPruner(ctx context.Context, cfg PruneConfig) *Pruner {
	p := g.NewPruner(cfg)
	ctx, p.stop = context.WithCancel(ctx)
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(p.cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				p.Sweep()
			}
		}
	}()
	return p
}

// Stop ends the periodic sweep and returns once a sweep in progress has
// finished: its removals are then in the table (and, through the observer,
// in the journal). The daemon calls it before the final compaction, which
// would otherwise read the table before the last sweep's UNSETs and write
// the pruned entries back (issue 11 item 8). Safe to call more than once,
// and on a Pruner from NewPruner (which has no sweep loop).
func (p *Pruner) Stop() {
	if p.stop == nil {
		return
	}
	p.stop()
	<-p.done
}

// NewPruner turns pruning on without the periodic sweep (tests call Sweep).
func (g *Guard) NewPruner(cfg PruneConfig) *Pruner {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultPruneInterval
	}
	if cfg.Log == nil {
		cfg.Log = func(string) {}
	}
	if cfg.Alive == nil {
		cfg.Alive = procAlive
	}
	if cfg.Ports == nil {
		cfg.Ports = procPorts
	}
	if cfg.Local == nil {
		cfg.Local = interfaceAddr
	}
	p := &Pruner{g: g, cfg: cfg, procs: map[pruneKey]procID{}, misses: map[pruneKey]int{}}
	g.mu.Lock()
	g.pruner = p
	g.mu.Unlock()
	return p
}

func (p *Pruner) track(e registry.Entry, pid int) {
	start, ok := procStart(pid)
	if !ok {
		return // already gone: the next sweep's port rule applies
	}
	p.mu.Lock()
	p.procs[keyOf(e)] = procID{pid: pid, start: start, addr: e.Addr}
	p.mu.Unlock()
}

func (p *Pruner) forget(e registry.Entry) {
	k := keyOf(e)
	p.mu.Lock()
	delete(p.procs, k)
	delete(p.misses, k)
	p.mu.Unlock()
}

// Tracked returns the number of registrations with a known process.
func (p *Pruner) Tracked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.procs)
}

// Sweep runs one round and returns the number of entries removed.
func (p *Pruner) Sweep() int {
	t := p.g.cfg.Table
	tcp, udp, err := p.cfg.Ports()
	if err != nil {
		p.cfg.Log("prune: " + err.Error() + "; port checks skipped")
	}
	removed := 0
	for _, e := range t.Entries() {
		if e.Prog == pmap.Prog {
			continue
		}
		k := keyOf(e)
		port, ipLocal, isTCP := p.endpoint(e)
		bound := err == nil && ipLocal && (isTCP && tcp[port] || !isTCP && udp[port])
		p.mu.Lock()
		pr, tracked := p.procs[k]
		p.mu.Unlock()
		why := ""
		switch {
		case tracked && pr.addr == e.Addr && !p.cfg.Alive(pr.pid, pr.start):
			if !bound {
				why = "registering process " + strconv.Itoa(pr.pid) + " is gone"
			}
		case err == nil && ipLocal && isTCP && !tcp[port]:
			p.mu.Lock()
			p.misses[k]++
			n := p.misses[k]
			p.mu.Unlock()
			if n >= PruneMisses {
				why = "tcp port " + strconv.Itoa(int(port)) + " is not listening"
			}
		default:
			p.mu.Lock()
			delete(p.misses, k)
			p.mu.Unlock()
		}
		if why == "" {
			continue
		}
		// The entry may have been replaced since Entries(): remove only
		// the one that was checked.
		if cur, ok := t.Find(e.Prog, e.Vers, e.Netid); !ok || cur != e {
			continue
		}
		if t.Unset(e.Prog, e.Vers, e.Netid, e.Owner) {
			removed++
			p.cfg.Log("prune: removed " + strconv.FormatUint(uint64(e.Prog), 10) + " v" +
				strconv.FormatUint(uint64(e.Vers), 10) + " " + e.Netid + " " + e.Addr + " (owner " + e.Owner + "): " + why)
		}
	}
	return removed
}

// endpoint returns the port of an IP registration, whether its address is
// one of this host's, and whether it is TCP. ipLocal is false for non-IP
// netids and unparsable addresses.
func (p *Pruner) endpoint(e registry.Entry) (port uint16, ipLocal, isTCP bool) {
	switch strings.ToLower(e.Netid) {
	case pmap.NetidTCP, pmap.NetidTCP6:
		isTCP = true
	case pmap.NetidUDP, pmap.NetidUDP6:
	default:
		return 0, false, false
	}
	ap, err := pmap.ParseUaddr(e.Addr)
	if err != nil || ap.Port() == 0 {
		return 0, false, isTCP
	}
	return ap.Port(), localAddr(ap.Addr(), p.cfg.Local), isTCP
}

// procStart returns field 22 of /proc/PID/stat (start time in clock ticks
// since boot); ok is false when the process is gone or a zombie.
func procStart(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// comm (field 2) may hold spaces and parentheses: fields follow the
	// last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field 22 is f[19].
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0, false
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	return start, err == nil
}

func procAlive(pid int, start uint64) bool {
	s, ok := procStart(pid)
	if !ok {
		// Unreadable for another reason than ENOENT (hidepid): alive.
		_, err := os.Stat("/proc/" + strconv.Itoa(pid))
		return err == nil && !isZombie(pid)
	}
	return s == start
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+3 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}

// TCP states of /proc/net/tcp (include/net/tcp_states.h).
const tcpListen = "0A"

// procPorts reads the socket tables of the daemon's network namespace.
func procPorts() (tcp, udp map[uint16]bool, err error) {
	tcp, udp = map[uint16]bool{}, map[uint16]bool{}
	for _, f := range []struct {
		path string
		set  map[uint16]bool
		tcp  bool
	}{{"/proc/net/tcp", tcp, true}, {"/proc/net/tcp6", tcp, true}, {"/proc/net/udp", udp, false}, {"/proc/net/udp6", udp, false}} {
		if e := scanSockets(f.path, f.set, f.tcp); e != nil && !errors.Is(e, fs.ErrNotExist) {
			err = e
		}
	}
	return tcp, udp, err
}

// scanSockets adds the local ports of path's sockets (TCP: LISTEN only).
// A line is "sl local_address rem_address st ...", addresses "HEX:PORT".
func scanSockets(path string, set map[uint16]bool, listenOnly bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 || listenOnly && fs[3] != tcpListen {
			continue
		}
		_, hexPort, ok := strings.Cut(fs[1], ":")
		if !ok {
			continue
		}
		if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
			set[uint16(p)] = true
		}
	}
	return sc.Err()
}

func interfaceAddr(a netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range addrs {
		if n, ok := ia.(*net.IPNet); ok {
			if x, ok := netip.AddrFromSlice(n.IP); ok && x.Unmap() == a {
				return true
			}
		}
	}
	return false
}

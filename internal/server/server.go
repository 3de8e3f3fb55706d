package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/rpc"
)

// Handler answers one RPC message. It appends the reply to out and returns
// it; send false means "stay silent" (undecodable header, CALLIT rules).
// req and out are only valid during the call.
type Handler interface {
	ServeRPC(out, req []byte, c *access.Caller) (reply []byte, send bool)
}

// TailHandler is an optional Handler method for stream transports: the
// reply is reply followed by tail, a shared immutable buffer (a cached
// encoding) that the transport writes with writev instead of copying it.
type TailHandler interface {
	ServeRPCTail(out, req []byte, c *access.Caller) (reply, tail []byte, send bool)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(out, req []byte, c *access.Caller) ([]byte, bool)

// ServeRPC calls f.
func (f HandlerFunc) ServeRPC(out, req []byte, c *access.Caller) ([]byte, bool) {
	return f(out, req, c)
}

// Limits and timeouts. The reference (libtirpc 1.3.3) has no idle timeout
// but reaps connections idle for 15 s once 4/5 of its descriptors are in use
// (CVE-2021-46828); we do the same against MaxConns, and also close any
// connection idle for IdleTimeout and any record that takes longer than
// RecordTimeout to arrive (slow-loris).
const (
	// UDPBufSize is the receive buffer of each UDP reader: the reference's
	// 9000 bytes (RPC_MAXDATASIZE). A longer datagram is truncated by the
	// kernel and the received prefix is still handed to the Handler, as the
	// reference does (a 12 KB NULL call is answered); decoding is bounded by
	// what was received.
	UDPBufSize = 9000
	// DefaultMaxRecord caps a reassembled stream record (reference: 9000,
	// rpc_control(RPC_SVC_CONNMAXREC_SET)). A larger record closes the
	// connection.
	DefaultMaxRecord = rpc.MaxRecord
	// DefaultMaxConns caps open stream connections over all listeners.
	DefaultMaxConns = 1024
	// ReapIdle: when 4/5 of MaxConns are in use, connections idle this long
	// are closed (libtirpc svc_vc.c rendezvous_request), here only those
	// of sources over their fair share (conns.go).
	ReapIdle = 15 * time.Second
	// DefaultIdleTimeout closes a connection that sent nothing for this long.
	// Clients of the portmapper make a few calls and hang up; five minutes
	// leaves room for a slow client and frees descriptors of dead peers.
	DefaultIdleTimeout = 5 * time.Minute
	// DefaultRecordTimeout bounds the time between the first byte of a record
	// and its last.
	DefaultRecordTimeout = 30 * time.Second
	// DefaultWriteTimeout bounds writing one reply (the reference kills a
	// connection after 2 s of failed non-blocking writes; we are more patient
	// with slow links but still bounded).
	DefaultWriteTimeout = 10 * time.Second
)

// Options tune a Server; zero fields take the defaults above.
type Options struct {
	Log        *slog.Logger // nil: slog.Default()
	UDPReaders int          // readers per UDP socket; 0: max(1, GOMAXPROCS/2) (each takes UDPBatch datagrams per wake-up)
	MaxRecord  int
	MaxConns   int
	// MaxConnsPerUID caps the local-socket connections of one uid other
	// than 0 (0: DefaultMaxConnsPerUID); it is also the share a local
	// source keeps when connections are reaped (conns.go).
	MaxConnsPerUID int
	IdleTimeout    time.Duration
	RecordTimeout  time.Duration
	WriteTimeout   time.Duration
	ReapIdle       time.Duration
	// StreamEngine serves TCP and AF_UNIX connections: EngineGoroutine
	// (a goroutine per connection) or EngineEpoll (StreamLoops event
	// loops); "" is DefaultStreamEngine.
	StreamEngine string
	StreamLoops  int // event loops of EngineEpoll; 0: DefaultStreamLoops()
	// RecordsPerWakeup is the records a stream connection has served per
	// turn of its event loop before the loop turns to the others; 0:
	// DefaultRecordsPerWakeup.
	RecordsPerWakeup int
	// HeavyShare is the percentage (1-100) of each event loop's time that
	// heavy connections (pipelining, large replies) together may take; 0:
	// DefaultHeavyShare.
	HeavyShare int
	// MaxHeldBytes is the memory held on all stream peers' behalf (pending
	// replies, shared DUMP tails, unprocessed input, reassembly); over it
	// the heaviest holder is closed. 0: DefaultMaxHeldBytes.
	MaxHeldBytes int
}

// Stream engines (Options.StreamEngine).
const (
	EngineGoroutine = "goroutine"
	EngineEpoll     = "epoll"
	// DefaultStreamEngine is the engine of Options{}.
	DefaultStreamEngine = EngineEpoll
)

// DefaultStreamLoops is half of GOMAXPROCS, at least one. A loop waits in
// epoll_wait holding its P; while some P stays idle the runtime leaves it
// there, but with every P in a loop's system call sysmon keeps retaking
// them and starting threads to poll the network. Measured on 2 CPUs, 64
// persistent TCP clients: one loop 155k GETPORT/s at 6.0 µs of CPU per
// call, two loops 97k at 9.9 µs (a quarter of it in context switches).
func DefaultStreamLoops() int { return LoopsFor(runtime.GOMAXPROCS(0)) }

// LoopsFor is DefaultStreamLoops (and the default UDPReaders per socket)
// for procs Ps: half of them, at least one.
func LoopsFor(procs int) int { return max(1, procs/2) }

// Waiters is the number of goroutines that serving socks keeps waiting in
// blocking system calls: UDPReaders per UDP socket, and the StreamLoops of
// EngineEpoll when socks has a stream socket. Each holds its P (and its
// thread) while it waits: the runtime does not hand the P over on entry
// to a system call, and its monitor (sysmon) retakes it only after a tick
// of up to 10 ms. When they hold every P, a goroutine woken by the poller
// (an accept loop, a timer) waits for that tick; a program that wants the
// machine's CPUs for everything else should run with this many Ps more
// (cmd/rpcbind does).
func (s *Server) Waiters(socks []*Socket) int {
	n, streams := 0, false
	for _, k := range socks {
		if k.Packet != nil {
			n += s.opt.UDPReaders
		}
		streams = streams || k.Listener != nil
	}
	if streams && s.opt.StreamEngine == EngineEpoll {
		n += s.opt.StreamLoops
	}
	return n
}

// loopYield: a serving loop (a UDP reader, a stream event loop) that
// waits in blocking system calls passes through the scheduler at most this
// often, before a wait. The runtime's monitor (sysmon) takes a goroutine
// that has not been scheduled for 10 ms for a long-running one, however
// many system calls it made: it preempts it with a signal, takes its P at
// each of its waits, and never slows down itself (measured on a UDP
// reader, 1,000 calls 1 ms apart: 2,200 sysmon sleeps and 36 signals,
// against 250-420 and 0-5 with the yield). Under the 10 ms slice; a yield costs
// a scheduler pass and, when a P is idle, the wake-up of a thread that
// finds nothing to do.
const loopYield = 8 * time.Millisecond

// Stats counts outcomes; read them with the atomic Load methods.
type Stats struct {
	UDPIn        atomic.Uint64 // datagrams received
	UDPOut       atomic.Uint64 // replies sent
	UDPTruncated atomic.Uint64 // datagrams longer than UDPBufSize
	UDPSilent    atomic.Uint64 // datagrams the handler left unanswered
	Accepted     atomic.Uint64 // stream connections accepted
	Records      atomic.Uint64 // stream records handled
	// ClosedAtAccept: connections their peer had closed before sending
	// a byte, closed by the accept loop (EngineEpoll) without a loop.
	ClosedAtAccept atomic.Uint64
	TooLarge       atomic.Uint64 // connections closed for a record over MaxRecord
	Reaped         atomic.Uint64 // connections closed because of MaxConns
	ReapedShare    atomic.Uint64 // of Reaped: connections of a source over its fair share
	ReapedLocal    atomic.Uint64 // of Reaped: local-socket and loopback connections
	UIDDenied      atomic.Uint64 // local connections closed at accept for MaxConnsPerUID
	Panics         atomic.Uint64 // handler panics recovered
	Errors         atomic.Uint64 // read/write errors other than EOF and timeouts
	Shed           atomic.Uint64 // connections closed to keep held memory within MaxHeldBytes
	HeldBytes      atomic.Int64  // gauge: memory held on stream peers' behalf now
	HeldPeak       atomic.Int64  // the largest HeldBytes seen
}

// Server serves sockets with one Handler.
type Server struct {
	h    Handler
	opt  Options
	log  *slog.Logger
	Stat Stats
	held *heldBudget

	closing atomic.Bool
	epoch   time.Time // a monotonic base for loop clocks
	wg      sync.WaitGroup

	mu      sync.Mutex
	conns   map[streamConn]*connEntry // open connections, each in its source's list (conns.go)
	sources map[source]*srcState      // sources holding connections
	classes [nClasses]srcBuckets      // the sources by class and count
	// lastSweep is the last idle sweep at 4/5 of MaxConns (rate-limited);
	// sweepScratch its list of sources, kept to spare an allocation.
	lastSweep    time.Time
	sweepScratch []*srcState
	localGrace   time.Duration // DefaultLocalGrace; tests change it before the first connection
	loops        []*eloop      // EngineEpoll, started with the first stream socket
	listeners    []net.Listener
	closers      []io.Closer // raw accept loops' listening duplicates, closed by Shutdown
	udps         []*udpSock
	starting     int           // serving loops started and not yet running
	running      chan struct{} // closed when starting drops to 0
}

// New returns a Server that sends every message to h.
func New(h Handler, opt Options) *Server {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.UDPReaders <= 0 {
		// Half of GOMAXPROCS per socket, as the stream loops: on 2 cores
		// one reader (with recvmmsg batches it keeps up with what the
		// machine can send; a second one mostly added scheduler wake-ups:
		// 101k vs 137k GETPORT/s, 5.8 vs 3.7 µs CPU per call), running
		// beside the stream loop, so UDP and streams use both cores.
		opt.UDPReaders = DefaultStreamLoops()
	}
	if opt.MaxRecord <= 0 {
		opt.MaxRecord = DefaultMaxRecord
	}
	if opt.MaxConns <= 0 {
		opt.MaxConns = DefaultMaxConns
	}
	if opt.MaxConnsPerUID <= 0 {
		opt.MaxConnsPerUID = DefaultMaxConnsPerUID
	}
	if opt.IdleTimeout <= 0 {
		opt.IdleTimeout = DefaultIdleTimeout
	}
	if opt.RecordTimeout <= 0 {
		opt.RecordTimeout = DefaultRecordTimeout
	}
	if opt.ReapIdle <= 0 {
		opt.ReapIdle = ReapIdle
	}
	if opt.WriteTimeout <= 0 {
		opt.WriteTimeout = DefaultWriteTimeout
	}
	if opt.StreamEngine == "" {
		opt.StreamEngine = DefaultStreamEngine
	}
	if opt.StreamLoops <= 0 {
		opt.StreamLoops = DefaultStreamLoops()
	}
	if opt.RecordsPerWakeup <= 0 {
		opt.RecordsPerWakeup = DefaultRecordsPerWakeup
	}
	if opt.HeavyShare <= 0 || opt.HeavyShare > 100 {
		opt.HeavyShare = DefaultHeavyShare
	}
	if opt.MaxHeldBytes <= 0 {
		opt.MaxHeldBytes = DefaultMaxHeldBytes
	}
	s := &Server{h: h, opt: opt, log: opt.Log, epoch: time.Now(), conns: make(map[streamConn]*connEntry),
		sources: make(map[source]*srcState), localGrace: DefaultLocalGrace}
	s.held = newHeldBudget(opt.MaxHeldBytes, &s.Stat)
	return s
}

// Start serves sock in the background until Shutdown. The Server owns the
// socket from then on.
func (s *Server) Start(sock *Socket) {
	switch {
	case sock.Packet != nil:
		s.startUDP(sock)
	case sock.Listener != nil:
		s.startStream(sock)
	}
}

// closedChan is what Running returns when no loop is starting.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Running returns a channel that is closed once every serving loop started
// so far — each UDP reader and each accept loop — runs: it is about to wait
// for its first datagram or connection. A daemon sends systemd READY=1
// only then (STYLE 11). Loops started later are not waited for by a
// channel already returned.
func (s *Server) Running() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.starting == 0 {
		return closedChan
	}
	return s.running
}

// loopStarting counts a serving loop before its goroutine starts.
func (s *Server) loopStarting() {
	s.mu.Lock()
	if s.starting == 0 {
		s.running = make(chan struct{})
	}
	s.starting++
	s.mu.Unlock()
	s.wg.Add(1)
}

// loopRunning is called by a serving loop once, before it first waits.
func (s *Server) loopRunning() {
	s.mu.Lock()
	if s.starting--; s.starting == 0 {
		close(s.running)
	}
	s.mu.Unlock()
}

// Conns is the number of open stream connections.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Shutdown stops accepting, unblocks every read (UDP readers by wake-up
// datagrams, stream loops by their eventfd), lets requests in progress
// finish and waits for all goroutines; when ctx ends first it closes every
// connection and returns ctx.Err().
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	for _, l := range s.listeners {
		l.Close()
	}
	for _, c := range s.closers {
		c.Close()
	}
	udps := s.udps
	for c := range s.conns {
		c.wake()
	}
	for _, l := range s.loops {
		l.wake()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	go kickUDP(udps, done)
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.mu.Lock()
		for c := range s.conns {
			c.kill()
		}
		s.mu.Unlock()
		<-done
	}
	return err
}

// kickUDP sends the UDP readers wake-up datagrams until every one has gone
// (at most udpWake after Shutdown began) or done is closed: one reader may
// take several wake-ups in one recvmmsg, and a firewall may drop them.
func kickUDP(udps []*udpSock, done <-chan struct{}) {
	t := time.NewTicker(udpKick)
	defer t.Stop()
	for {
		any := false
		for _, u := range udps {
			any = u.kick() || any
		}
		if !any {
			return
		}
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// serve calls the handler under recover; ok is false after a panic.
func (s *Server) serve(out, req []byte, c *access.Caller) (reply []byte, send, ok bool) {
	reply = out // what a panic leaves
	defer s.recoverHandler(c, &ok)
	reply, send = s.h.ServeRPC(out, req, c)
	return reply, send, true
}

// serveTail is serve for streams, through TailHandler when h has it.
func (s *Server) serveTail(out, req []byte, c *access.Caller) (reply, tail []byte, send, ok bool) {
	th, _ := s.h.(TailHandler)
	if th == nil {
		reply, send, ok = s.serve(out, req, c)
		return reply, nil, send, ok
	}
	reply = out
	defer s.recoverHandler(c, &ok)
	reply, tail, send = th.ServeRPCTail(out, req, c)
	return reply, tail, send, true
}

// recoverHandler, deferred, turns a handler panic into ok = false (the
// caller then sends nothing).
func (s *Server) recoverHandler(c *access.Caller, ok *bool) {
	if v := recover(); v != nil {
		s.Stat.Panics.Add(1)
		buf := make([]byte, 4096)
		buf = buf[:runtime.Stack(buf, false)]
		s.log.Error("server: handler panic", "netid", c.Netid, "from", c.Addr.String(),
			"panic", v, "stack", string(buf))
		*ok = false
	}
}

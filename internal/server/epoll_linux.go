package server

import (
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/rpc"
)

// EngineEpoll: a few event loops serve every stream connection, the
// structure of a C poll loop. Each loop is a goroutine with its own epoll
// set (level-triggered), waiting in epoll_wait and passing through the
// scheduler at most once per loopYield; connections are assigned round
// robin by the accept loops, which still Accept through the listener (so
// wrappers such as the per-source cap and SO_PEERCRED keep working) and
// then hand over a duplicate of the descriptor, closing the original so the
// runtime's poller forgets it. A call costs one epoll_wait share, one read
// and one writev, with no goroutine wake-up.
//
// Semantics are the goroutine engine's: records reassembled from fragments
// (running total capped at MaxRecord, at most rpc.MaxFragments, empty
// records refused), pipelined calls answered in order, a handler panic
// closes the connection, replies written with one non-blocking writev. A
// reply the socket does not take at once is kept (the shared tail by
// reference) and written on EPOLLOUT; until it is, the connection is not
// read (back-pressure) and the unprocessed input waits in the connection.
// A connection is served at most Options.RecordsPerWakeup records (and
// wakeupOutput bytes of replies) per turn; the rest of its input waits in
// the connection, which is neither read nor polled meanwhile, and the
// loop's ready list brings it back on the next iteration, after the
// connections that epoll reports then (see budget.go). A connection whose
// recent turns spent their budget (pipelining, GETSTAT, large DUMPs) is
// heavy: in each iteration the light connections and new ones are served
// first, then the heavy ones, with a non-blocking look at epoll after each
// heavy turn whose light events are served at once; a small call waits for
// at most one heavy turn. Memory a connection
// holds is charged to the Server's held-bytes budget.
// Timeouts are checked by a sweep every loopTick instead of per-call
// deadlines, so they fire up to one tick late.

const (
	// loopReadBuf is each loop's read buffer: one read takes every
	// pipelined call that has arrived; a record left incomplete is copied
	// into its connection.
	loopReadBuf = 16 << 10
	// loopEvents is the epoll_wait batch.
	loopEvents = 128
	// maxLoopTick bounds the sweep interval; shorter timeouts sweep at a
	// quarter of the shortest.
	maxLoopTick = 250 * time.Millisecond
)

// eloop is one event loop. Fields below mu are shared with the accept
// loops and Shutdown; the rest belong to the loop's goroutine.
type eloop struct {
	s    *Server
	epfd int
	efd  int // eventfd: new connections, kills, shutdown
	tick time.Duration

	mu     sync.Mutex
	adds   []*econn
	kills  []*econn
	exited bool

	fds     []*econn // by descriptor
	n       int      // open connections
	seq     uint32   // tags epoll events, so a reused descriptor's stale event is ignored
	events  []unix.EpollEvent
	rbuf    []byte
	out     []byte
	iov     [2]unix.Iovec
	mono    time.Duration // loop clock (monotonic), read once per wake-up
	ready   []*econn      // connections with stashed input, served next iteration
	heavy   []*econn      // heavy connections with an event this iteration, served after the light ones
	parked  []*econn      // heavy connections waiting for the heavy-share budget to refill
	tokens  time.Duration // heavy-share budget: loop time heavy turns may still take (negative: owed)
	filled  time.Duration // loop clock of the last refill
	spare   []*econn      // the other ready list, swapped with it
	recs    int           // records served in the current connection's turn
	outN    int           // bytes of replies written in the current turn
	free    []byte        // a stash buffer no connection uses, reused by the next (never charged: one per loop)
	bigs    [][]byte      // spare large reply buffers (see takeBig)
	bigUsed bool          // a large reply was built since the last sweep
	recCost int           // what one record adds to a turn's cost (see weigh)
	wall    int64         // unix nanoseconds of the same instant
	base    time.Time
	sweep   time.Duration // next sweep on the loop clock

	yielded time.Duration // the last pass through the scheduler (loopYield), on the loop clock
}

// econn is one connection of an event loop.
type econn struct {
	l          *eloop
	fd         int
	seq        uint32
	closer     io.Closer // nil, or the accepted wrapper to Close last (a per-source slot)
	caller     access.Caller
	lastActive atomic.Int64
	hold       hold   // memory charged to the held-bytes budget
	closed     bool   // owned by the loop, as are the fields below
	doomed     bool   // killed before the loop registered it
	queued     bool   // stashed input waits in the loop's ready list
	heavy      bool   // its recent turns spent their budget: served after light connections
	cost       int    // recent cost of its turns (see weigh)
	deferred   bool   // on the loop's heavy list for this iteration
	parked     bool   // on the loop's parked list: not polled until the heavy share refills
	events     uint32 // the epoll interest set

	since    time.Duration // loop clock: idle since, record started, or write started
	inRecord bool          // bytes of a record have arrived
	inFrag   bool          // a fragment's mark has been read
	last     bool          // the current fragment is the last
	frag     int           // bytes the current fragment still owes
	frags    int           // fragments of the current record
	hdr      [4]byte       // a mark split across reads
	nhdr     int
	rec      []byte // the record so far, when it spans reads or fragments
	stash    []byte // input not yet processed: a reply waits, or the turn's budget is spent
	wout     []byte // the part of a reply the socket has not taken
	woutBuf  []byte // the loop's large buffer wout lies in, returned when written
	wtail    []byte // the part of its shared tail not taken
	tail     []byte // the whole shared tail, while part of it waits (its budget key)
}

func (c *econn) active() int64 { return c.lastActive.Load() }
func (c *econn) wake()         {} // the loops are woken once by Shutdown
func (c *econn) kill()         { c.l.kill(c) }

func (c *econn) writing() bool { return len(c.wout)+len(c.wtail) > 0 }

// startLoops starts StreamLoops event loops. Called once, before the first
// accept loop of EngineEpoll starts.
func (s *Server) startLoops() {
	tick := min(s.opt.IdleTimeout, s.opt.RecordTimeout, s.opt.WriteTimeout) / 4
	tick = max(min(tick, maxLoopTick), time.Millisecond)
	var loops []*eloop
	for range s.opt.StreamLoops {
		l, err := newLoop(s, tick)
		if err != nil {
			// Without loops, connections get goroutines.
			s.log.Error("server: event loop", "err", err)
			for _, l := range loops {
				unix.Close(l.epfd)
				unix.Close(l.efd)
			}
			return
		}
		loops = append(loops, l)
	}
	s.mu.Lock()
	s.loops = loops
	s.mu.Unlock()
	for _, l := range loops {
		s.loopStarting()
		go l.run()
	}
}

func newLoop(s *Server, tick time.Duration) (*eloop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(efd)
		return nil, err
	}
	return &eloop{
		s: s, epfd: epfd, efd: efd, tick: tick,
		events:  make([]unix.EpollEvent, loopEvents),
		rbuf:    make([]byte, loopReadBuf),
		out:     make([]byte, 0, 1024),
		base:    time.Now(),
		recCost: heavyOutput / max(1, s.opt.RecordsPerWakeup),
	}, nil
}

var rrLoop atomic.Uint32

// handOff gives an accepted connection to an event loop. It returns false
// when nc cannot be detached (a wrapper that hides its socket): a goroutine
// serves it then.
func (s *Server) handOff(nc net.Conn, caller *access.Caller) bool {
	fd, closer, ok := detach(nc)
	if !ok {
		return false
	}
	if fd < 0 { // closed by its peer before sending a byte: nothing to serve
		s.Stat.ClosedAtAccept.Add(1)
		return true
	}
	return s.handOffFD(fd, closer, caller)
}

// handOffFD gives the connection on descriptor fd (owned from now on) to
// an event loop; closer, if not nil, is closed after it.
func (s *Server) handOffFD(fd int, closer io.Closer, caller *access.Caller) bool {
	l := s.loops[int(rrLoop.Add(1))%len(s.loops)]
	c := &econn{l: l, fd: fd, closer: closer, caller: *caller}
	c.hold.c = c
	c.lastActive.Store(time.Now().UnixNano())
	if !s.addConn(c) {
		c.closeFD()
		return true
	}
	l.mu.Lock()
	if l.exited {
		l.mu.Unlock()
		c.closeFD()
		s.removeConn(c)
		s.wg.Done()
		return true
	}
	wake := l.idleLocked()
	l.adds = append(l.adds, c)
	l.mu.Unlock()
	if wake {
		l.signal()
	}
	return true
}

// detach takes nc's socket for an event loop: a duplicate descriptor, and
// nc's own closed so that the runtime's poller stops watching it. A wrapper
// exposing NetConn (the per-source cap) is returned as closer, to be
// closed when the loop closes the connection.
func detach(nc net.Conn) (fd int, closer io.Closer, ok bool) {
	inner := nc
	if w, is := nc.(interface{ NetConn() net.Conn }); is {
		inner = w.NetConn()
	}
	var sc syscall.Conn
	switch t := inner.(type) {
	case *net.TCPConn:
		sc = t
	case *net.UnixConn:
		sc = t
	default:
		return -1, nil, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, nil, false
	}
	fd = -1
	eof := false
	rc.Control(func(f uintptr) {
		// A connection its peer closed before sending anything (a
		// connect-and-close flood) is closed here, never reaching a
		// loop: one peek instead of a dup, an epoll registration, a
		// wake-up and a read on the loop every other client waits on.
		if peerClosed(f) {
			eof = true
			return
		}
		// O_NONBLOCK belongs to the open file, so the duplicate keeps it.
		fd, err = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0)
	})
	if eof {
		nc.Close()
		return -1, nil, true
	}
	if err != nil || fd < 0 {
		return -1, nil, false
	}
	inner.Close()
	if inner != nc {
		closer = nc
	}
	return fd, closer, true
}

// peerClosed reports whether the connection on fd was closed by its peer
// before sending a byte (one non-blocking MSG_PEEK reads end of file).
func peerClosed(fd uintptr) bool {
	var b [1]byte
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	return e == 0 && n == 0
}

func (c *econn) closeFD() {
	unix.Close(c.fd)
	if c.closer != nil {
		c.closer.Close()
	}
}

// signal wakes the loop. Callers hold no lock or l.mu; never after exit.
func (l *eloop) signal() {
	var one = [8]byte{1}
	unix.Write(l.efd, one[:])
}

// wake makes the loop look at s.closing (Shutdown, under s.mu).
func (l *eloop) wake() {
	l.mu.Lock()
	if !l.exited {
		l.signal()
	}
	l.mu.Unlock()
}

// kill asks the loop to close c (reaping, shutdown out of time).
func (l *eloop) kill(c *econn) {
	l.mu.Lock()
	if !l.exited {
		wake := l.idleLocked()
		l.kills = append(l.kills, c)
		if wake {
			l.signal()
		}
	}
	l.mu.Unlock()
}

// idleLocked reports whether no add or kill waits for the loop, so the
// next one must wake it (under l.mu). Otherwise whoever queued the first
// has signalled (or is about to, right after unlocking), and the loop
// takes both lists at once after reading that signal: under a connection
// flood one eventfd write serves a batch instead of one per add and one
// per kill.
func (l *eloop) idleLocked() bool { return len(l.adds) == 0 && len(l.kills) == 0 }

func (l *eloop) now() {
	t := time.Now()
	l.mono, l.wall = t.Sub(l.base), t.UnixNano()
}

func (l *eloop) run() {
	s := l.s
	defer s.wg.Done()
	s.loopRunning()
	l.now()
	l.sweep = l.mono + l.tick
	for {
		wait := -1
		if l.n > 0 {
			wait = max(int((l.sweep-l.mono+time.Millisecond-1)/time.Millisecond), 0)
		}
		// Connections whose turn ended with input left are served after
		// what epoll reports now, so a connection that just sent waits
		// for at most the turn in progress when its data came.
		batch := l.ready
		l.ready = l.spare[:0]
		l.refill()
		if len(l.parked) > 0 {
			if l.tokens > 0 {
				l.unpark()
			} else {
				wait = min(max(wait, 0), l.owedMillis())
			}
		}
		if len(batch) > 0 || len(l.heavy) > 0 {
			wait = 0
		}
		if wait != 0 && l.mono-l.yielded >= loopYield {
			l.yielded = l.mono
			runtime.Gosched()
		}
		n, err := unix.EpollWait(l.epfd, l.events, wait)
		l.now()
		if err != nil && err != unix.EINTR {
			s.Stat.Errors.Add(1)
			s.log.Error("server: epoll_wait", "err", err)
			time.Sleep(10 * time.Millisecond)
		}
		l.dispatch(n, true)
		l.serveHeavy()
		l.serveReady(batch)
		if l.mono >= l.sweep {
			l.sweepConns()
			l.dropBigs()
			l.sweep = l.mono + l.tick
		}
		if s.closing.Load() && l.shutdown() {
			return
		}
	}
}

// dispatch serves the n events in l.events: new connections and light
// connections at once. A heavy connection (its last turn spent a turn's
// budget) is put on l.heavy when defer is true, and left for the next
// epoll_wait otherwise (epoll is level-triggered: it reports it again).
func (l *eloop) dispatch(n int, deferHeavy bool) {
	for i := 0; i < n; i++ {
		ev := &l.events[i]
		fd := int(ev.Fd)
		if fd == l.efd {
			l.control()
			continue
		}
		if fd >= len(l.fds) {
			continue
		}
		c := l.fds[fd]
		if c == nil || c.seq != uint32(ev.Pad) || c.queued || c.deferred || c.parked {
			continue // closed earlier in this batch; served from the ready list; or waiting on l.heavy
		}
		if c.heavy {
			if deferHeavy {
				c.deferred = true
				l.heavy = append(l.heavy, c)
			}
			continue
		}
		l.turn(c)
	}
}

// turn serves one event of c and notes whether the turn was heavy.
func (l *eloop) turn(c *econn) {
	if c.writing() {
		l.flush(c)
	} else {
		l.read(c)
	}
	l.weigh(c)
}

// weigh adds the turn just ended to c's recent cost, bytes written plus
// records served (a full turn of records counts as heavyOutput), decaying
// by a quarter per turn: a connection that pipelines or asks for large
// replies (GETSTAT, DUMP) is heavy from its first full turn until about
// five small turns later, so the small last turn of a burst does not
// make it light again.
func (l *eloop) weigh(c *econn) {
	turn := l.outN + l.recs*l.recCost
	c.cost = c.cost - c.cost/4 + min(turn, 1<<30)
	c.heavy = c.cost >= heavyOutput
}

// serveHeavy gives each connection of l.heavy its turn, and after each
// one looks (without waiting) for events of light connections and serves
// them first: a connection asking one small thing waits for at most one
// heavy turn, however many heavy connections the loop holds (Netty's
// ioRatio and the reference's one-request-per-poll do the same job).
// Heavy turns together take at most HeavyShare percent of the loop's
// time (a token bucket on the loop clock, burst heavyBurst): once it is
// spent the remaining heavy connections are parked — not polled, their
// input and replies left in the kernel — until it refills, and the loop
// sleeps or serves light connections meanwhile.
func (l *eloop) serveHeavy() {
	for i := 0; i < len(l.heavy); i++ {
		c := l.heavy[i]
		l.heavy[i] = nil
		c.deferred = false
		if c.closed {
			continue
		}
		if l.tokens <= 0 {
			l.park(c)
			continue
		}
		l.chargedTurn(c)
		l.pollLight()
	}
	l.heavy = l.heavy[:0]
}

// chargedTurn is a heavy turn whose loop time is taken from the budget.
func (l *eloop) chargedTurn(c *econn) {
	l.now()
	t0 := l.mono
	l.heavyTurn(c)
	l.now()
	l.tokens -= l.mono - t0
}

// heavyTurn is a turn of a heavy connection: its stashed input if it was
// queued or parked with some, an event otherwise. A connection coming back
// from the parked list gets its epoll interest back.
func (l *eloop) heavyTurn(c *econn) {
	if c.queued {
		c.queued = false
		l.recs, l.outN = 0, 0
		p := c.stash
		c.stash = c.stash[:0]
		l.feed(c, p)
		l.settle(c)
		l.weigh(c)
	} else {
		l.turn(c)
	}
	if c.closed || c.queued {
		return
	}
	if c.writing() {
		l.interest(c, unix.EPOLLOUT)
	} else {
		l.interest(c, unix.EPOLLIN)
	}
}

// park takes c out of epoll's reports until the heavy share refills.
func (l *eloop) park(c *econn) {
	if c.parked {
		return
	}
	c.parked = true
	l.parked = append(l.parked, c)
	if !c.queued {
		l.interest(c, 0)
	}
}

// unpark moves the parked connections to the heavy list of this
// iteration.
func (l *eloop) unpark() {
	for i, c := range l.parked {
		l.parked[i] = nil
		c.parked = false
		if c.closed || c.deferred {
			continue
		}
		c.deferred = true
		l.heavy = append(l.heavy, c)
	}
	l.parked = l.parked[:0]
}

// refill adds HeavyShare percent of the loop time passed to the heavy
// budget, up to heavyBurst.
func (l *eloop) refill() {
	if d := l.mono - l.filled; d > 0 {
		l.tokens = min(l.tokens+d*time.Duration(l.s.opt.HeavyShare)/100, heavyBurst)
	}
	l.filled = l.mono
}

// owedMillis is how long, in whole milliseconds, the budget takes to
// become positive again.
func (l *eloop) owedMillis() int {
	d := (-l.tokens + 1) * 100 / time.Duration(l.s.opt.HeavyShare)
	return int((d + time.Millisecond - 1) / time.Millisecond)
}

// pollLight serves what epoll reports now for new and light connections;
// heavy ones wait for the next iteration.
func (l *eloop) pollLight() {
	n, err := unix.EpollWait(l.epfd, l.events, 0)
	if err != nil || n == 0 {
		return
	}
	l.now()
	l.dispatch(n, false)
}

// control takes new connections and kill requests.
func (l *eloop) control() {
	var b [8]byte
	unix.Read(l.efd, b[:])
	l.mu.Lock()
	adds, kills := l.adds, l.kills
	l.adds, l.kills = nil, nil
	l.mu.Unlock()
	for _, c := range adds {
		if c.doomed {
			l.close(c)
			continue
		}
		l.seq++
		if l.seq == 0 {
			l.seq++ // 0 marks a connection not registered
		}
		c.seq = l.seq
		c.since = l.mono
		c.events = unix.EPOLLIN
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(c.fd), Pad: int32(c.seq)}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
			l.s.Stat.Errors.Add(1)
			l.s.log.Error("server: epoll_ctl", "err", err)
			c.seq = 0
			l.close(c)
			continue
		}
		for c.fd >= len(l.fds) {
			l.fds = append(l.fds, nil)
		}
		l.fds[c.fd] = c
		l.n++
	}
	for _, c := range kills {
		if c.seq == 0 { // its add comes with a later wake-up
			c.doomed = true
			continue
		}
		l.close(c)
	}
}

// shutdown closes every connection that is not finishing a reply; once
// none is left it marks the loop exited, closes its descriptors and
// returns true.
func (l *eloop) shutdown() bool {
	for _, c := range l.fds {
		if c != nil && !c.writing() {
			l.close(c)
		}
	}
	if l.n > 0 {
		return false
	}
	l.mu.Lock()
	l.exited = true
	adds := l.adds
	l.adds, l.kills = nil, nil
	l.mu.Unlock()
	for _, c := range adds {
		c.closeFD()
		l.s.removeConn(c)
		l.s.wg.Done()
	}
	unix.Close(l.epfd)
	unix.Close(l.efd)
	return true
}

// close closes c once; its descriptor may be reused at once.
func (l *eloop) close(c *econn) {
	if c.closed {
		return
	}
	c.closed = true
	l.putBig(c)
	l.s.held.release(&c.hold)
	if c.seq != 0 {
		l.fds[c.fd] = nil
		l.n--
	}
	c.closeFD()
	l.s.removeConn(c)
	l.s.wg.Done()
}

// sweepConns closes connections past their idle, record or write timeout.
func (l *eloop) sweepConns() {
	o := &l.s.opt
	for _, c := range l.fds {
		if c == nil {
			continue
		}
		limit := o.IdleTimeout
		switch {
		case c.writing():
			limit = o.WriteTimeout
		case c.inRecord:
			limit = o.RecordTimeout
		}
		if l.mono-c.since >= limit {
			l.close(c)
		}
	}
}

// read takes what has arrived on c and serves the complete records.
func (l *eloop) read(c *econn) {
	s := l.s
	l.recs, l.outN = 0, 0
	// Raw: the descriptor is non-blocking, so the call never waits and
	// the runtime need not be told (entersyscall/exitsyscall).
	r, _, err := unix.RawSyscall(unix.SYS_READ, uintptr(c.fd), uintptr(unsafe.Pointer(&l.rbuf[0])), uintptr(len(l.rbuf)))
	n := int(r)
	switch {
	case err == 0 && n > 0:
		l.feed(c, l.rbuf[:n])
	case err == unix.EAGAIN || err == unix.EINTR:
	case err == 0: // EOF
		if c.inRecord {
			s.Stat.Errors.Add(1) // io.ErrUnexpectedEOF
		}
		l.close(c)
	default:
		s.Stat.Errors.Add(1)
		s.log.Debug("server: read", "netid", c.caller.Netid, "from", c.caller.Addr.String(), "err", err)
		l.close(c)
	}
}

// feed runs p through c's record reassembly and serves each complete
// record in order. When a reply waits for the socket, the rest of p is
// kept in c.stash and the connection switches to EPOLLOUT.
func (l *eloop) feed(c *econn, p []byte) {
	s := l.s
	for len(p) > 0 {
		if !c.inFrag {
			if !c.inRecord {
				c.inRecord, c.since, c.frags = true, l.mono, 0
				c.rec = c.rec[:0]
			}
			var m uint32
			if c.nhdr == 0 && len(p) >= 4 {
				m = binary.BigEndian.Uint32(p)
				p = p[4:]
			} else {
				k := copy(c.hdr[c.nhdr:], p)
				c.nhdr += k
				p = p[k:]
				if c.nhdr < 4 {
					return
				}
				c.nhdr = 0
				m = binary.BigEndian.Uint32(c.hdr[:])
			}
			if c.frags == rpc.MaxFragments {
				l.fail(c, rpc.ErrTooManyFrags)
				return
			}
			c.frags++
			n := int(m & maxFragment)
			if n > s.opt.MaxRecord-len(c.rec) {
				s.Stat.TooLarge.Add(1)
				s.log.Debug("server: record too large, closing", "netid", c.caller.Netid,
					"from", c.caller.Addr.String())
				l.close(c)
				return
			}
			c.inFrag, c.last, c.frag = true, m&(1<<31) != 0, n
		}
		var req []byte
		if c.last && len(c.rec) == 0 && len(p) >= c.frag {
			// The whole record is in p: served in place.
			req, p = p[:c.frag], p[c.frag:]
			c.frag = 0
		} else {
			k := min(len(p), c.frag)
			grown := len(c.rec)+k > cap(c.rec)
			c.rec = append(c.rec, p[:k]...)
			c.frag -= k
			p = p[k:]
			if grown && !l.account(c) {
				return
			}
			if c.frag > 0 {
				return
			}
			if !c.last {
				c.inFrag = false
				continue
			}
			req = c.rec
		}
		c.inFrag, c.inRecord = false, false
		if len(req) == 0 {
			l.fail(c, rpc.ErrEmptyRecord)
			return
		}
		if !l.serve(c, req) {
			return
		}
		if cap(c.rec) > keepBuf {
			c.rec = nil
			if !l.account(c) {
				return
			}
		}
		c.since = l.mono
		if c.writing() {
			l.stashRest(c, p)
			if l.account(c) {
				l.interest(c, unix.EPOLLOUT)
			}
			return
		}
		if len(p) > 0 && (l.recs >= s.opt.RecordsPerWakeup || l.outN >= wakeupOutput) {
			// The turn is spent: the rest waits for the next iteration,
			// unread and unpolled, in the ready list.
			l.stashRest(c, p)
			if l.account(c) {
				c.queued = true
				l.ready = append(l.ready, c)
				l.interest(c, 0)
			}
			return
		}
	}
}

// serveReady gives each connection of batch (the ready list of the
// previous iteration) a turn over its stashed input.
func (l *eloop) serveReady(batch []*econn) {
	for i, c := range batch {
		batch[i] = nil
		if c.closed {
			c.queued = false
			continue
		}
		if l.tokens <= 0 || c.parked || c.deferred {
			l.park(c) // keeps queued: its stash is served when it comes back
			continue
		}
		l.chargedTurn(c)
		l.pollLight()
	}
	l.spare = batch[:0]
}

// settle ends a turn over stashed input: once nothing waits, the stash is
// dropped and c is read again.
func (l *eloop) settle(c *econn) {
	if c.closed || c.writing() || c.queued {
		return
	}
	if l.free == nil && cap(c.stash) <= loopReadBuf {
		l.free = c.stash[:0]
	}
	c.stash = nil
	if l.account(c) {
		l.interest(c, unix.EPOLLIN)
	}
}

// stashRest keeps p, input not yet processed, in c (p may be c's own
// stash); a first stash takes the loop's free buffer when it fits.
func (l *eloop) stashRest(c *econn, p []byte) {
	if c.stash == nil && len(p) > 0 && cap(l.free) >= len(p) {
		c.stash, l.free = l.free, nil
	}
	c.stash = append(c.stash[:0], p...)
}

// account charges what c holds to the Server's budget; when c is shed
// instead it is closed and account returns false.
func (l *eloop) account(c *econn) bool {
	var tail []byte
	if len(c.wtail) > 0 {
		tail = c.tail
	}
	if l.s.held.charge(&c.hold, cap(c.wout)+cap(c.stash)+cap(c.rec), tail) {
		return true
	}
	l.s.log.Debug("server: held-bytes budget spent, closing the heaviest holder",
		"netid", c.caller.Netid, "from", c.caller.Addr.String())
	l.close(c)
	return false
}

// fail closes c for a stream error of the kind the goroutine engine counts.
func (l *eloop) fail(c *econn, err error) {
	l.s.Stat.Errors.Add(1)
	l.s.log.Debug("server: read", "netid", c.caller.Netid, "from", c.caller.Addr.String(), "err", err)
	l.close(c)
}

// serve answers one record; false when c was closed (a handler panic, a
// write error).
func (l *eloop) serve(c *econn, req []byte) bool {
	s := l.s
	s.Stat.Records.Add(1)
	b, start := rpc.BeginRecord(l.out[:0])
	reply, tail, send, ok := s.serveTail(b, req, &c.caller)
	if !ok {
		l.close(c) // the handler panicked: the connection's state is unknown
		return false
	}
	c.lastActive.Store(l.wall)
	if cap(reply) > smallOut {
		l.bigUsed = true
	}
	if cap(reply) <= maxKeepOut {
		l.out = reply[:0]
	}
	l.recs++
	if !send {
		return true
	}
	if len(reply)-start-4+len(tail) > maxFragment {
		reply, tail = append(reply, tail...), nil
	}
	endRecord(reply, start, len(tail))
	n, err := l.writev(c.fd, reply, tail)
	if err != nil {
		l.close(c)
		return false
	}
	l.outN += len(reply) - start + len(tail)
	if n < len(reply) {
		if cap(reply) > smallOut && cap(reply) <= maxKeepOut {
			// A large reply the socket took only part of: the
			// connection keeps the buffer itself (no copy) and the loop
			// takes another from its spares.
			c.wout, c.woutBuf = reply[n:], reply[:0]
			l.out = l.takeBig(cap(reply))
		} else {
			c.wout = append(c.wout[:0], reply[n:]...)
		}
		c.wtail = tail
	} else {
		c.wtail = tail[n-len(reply):]
	}
	if !c.writing() {
		return true
	}
	c.tail = tail
	c.hold.waiting.Store(l.wall)
	return l.account(c)
}

// Large reply buffers (GETSTAT's stream reply is up to ~200 KB) are
// reused instead of being grown from 1 KiB and dropped for every call: at
// hundreds of large replies a second that garbage kept the collector
// running (GOGC=2000 doubled a GETSTAT flood's throughput and cut the
// other clients' p99 by a quarter to a half). The loop keeps its output
// buffer up to maxKeepOut and up to maxSpareBigs spare ones lent to
// connections whose large reply waits for the socket; the sweep drops
// them after a tick without large replies, so an idle daemon holds none.
const (
	smallOut     = 64 << 10
	maxKeepOut   = 256 << 10
	maxSpareBigs = 4
)

// takeBig returns a spare large buffer, or a new one of capacity n.
func (l *eloop) takeBig(n int) []byte {
	if k := len(l.bigs); k > 0 {
		b := l.bigs[k-1]
		l.bigs[k-1] = nil
		l.bigs = l.bigs[:k-1]
		return b
	}
	return make([]byte, 0, n)
}

// putBig takes back the large buffer c was lent, if any.
func (l *eloop) putBig(c *econn) {
	if c.woutBuf == nil {
		return
	}
	if len(l.bigs) < maxSpareBigs {
		l.bigs = append(l.bigs, c.woutBuf[:0])
	}
	c.woutBuf = nil
}

// dropBigs lets the large buffers go after a tick without large replies.
func (l *eloop) dropBigs() {
	if !l.bigUsed {
		clear(l.bigs)
		l.bigs = l.bigs[:0]
		if cap(l.out) > smallOut {
			l.out = make([]byte, 0, 1024)
		}
	}
	l.bigUsed = false
}

// writev writes a and b with one non-blocking writev; a full socket is not
// an error (n is what it took).
func (l *eloop) writev(fd int, a, b []byte) (int, error) {
	niov := 0
	for _, p := range [2][]byte{a, b} {
		if len(p) > 0 {
			l.iov[niov].Base = unsafe.SliceData(p)
			l.iov[niov].SetLen(len(p))
			niov++
		}
	}
	if niov == 0 {
		return 0, nil
	}
	for {
		n, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&l.iov[0])), uintptr(niov)) // non-blocking: see read
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, nil
		}
		return 0, e
	}
}

// flush writes what waits for c (EPOLLOUT); once all is written it
// serves the stashed input and reads again.
func (l *eloop) flush(c *econn) {
	l.recs, l.outN = 0, 0
	n, err := l.writev(c.fd, c.wout, c.wtail)
	if err != nil {
		l.close(c)
		return
	}
	if n > 0 {
		l.outN += n
		c.hold.waiting.Store(l.wall) // progress: not the slowest reader
	}
	if n < len(c.wout) {
		c.wout = c.wout[n:]
		return
	}
	c.wtail = c.wtail[n-len(c.wout):]
	c.wout = c.wout[:0]
	if len(c.wtail) > 0 {
		return
	}
	c.wout, c.wtail, c.tail = nil, nil, nil
	l.putBig(c)
	c.hold.waiting.Store(0)
	c.since = l.mono
	if l.s.closing.Load() {
		l.close(c)
		return
	}
	if len(c.stash) > 0 {
		p := c.stash
		c.stash = c.stash[:0]
		l.feed(c, p)
	}
	l.settle(c)
}

// interest switches c between reading, writing and neither (its turn is
// spent); it never waits for both (a connection with a reply pending is
// not read).
func (l *eloop) interest(c *econn, events uint32) {
	if c.closed || c.events == events {
		return
	}
	c.events = events
	ev := unix.EpollEvent{Events: events, Fd: int32(c.fd), Pad: int32(c.seq)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
		l.s.Stat.Errors.Add(1)
		l.close(c)
	}
}

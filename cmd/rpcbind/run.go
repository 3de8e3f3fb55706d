package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/daemon"
	"github.com/openrpcbind/rpcbind/internal/forward"
	"github.com/openrpcbind/rpcbind/internal/guard"
	"github.com/openrpcbind/rpcbind/internal/ifaddr"
	"github.com/openrpcbind/rpcbind/internal/ratelimit"
	"github.com/openrpcbind/rpcbind/internal/registry"
	"github.com/openrpcbind/rpcbind/internal/server"
	"github.com/openrpcbind/rpcbind/internal/service"
	"github.com/openrpcbind/rpcbind/internal/warmstart"
	"github.com/openrpcbind/rpcbind/systemd"
)

// shutdownTimeout bounds the wait for requests in progress at a stop.
const shutdownTimeout = 5 * time.Second

// Denial logs: at most denialRate per second, bursts of denialBurst.
const (
	denialRate  = 10
	denialBurst = 50
)

// run is the whole daemon; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f, err := daemon.Parse(args[0], args[1:])
	if err != nil {
		fmt.Fprintln(stderr, err)
		fmt.Fprintln(stderr, daemon.Usage)
		return 1
	}
	if f.Help {
		fmt.Fprint(stdout, daemon.Help)
		return 0
	}
	if f.Version {
		fmt.Fprintln(stdout, versionString(version, readBuildInfo()))
		return 0
	}
	if f.Abort && f.Debug == 0 {
		fmt.Fprintln(stderr, "-a (abort) specified without -d (debugging) -- ignored.")
		f.Abort = false
	}
	// A daemon re-executed by the privilege drop (builds with cgo) runs as
	// the unprivileged user already, with the lock and sockets handed over.
	dropped := daemon.Dropped()
	// The reference takes the lock before it checks the uid: as another
	// user, a root-owned /run makes the lock fail first.
	lock := daemon.InheritedLock()
	if lock == nil {
		if lock, err = daemon.Lock(f.LockFile); err != nil {
			fmt.Fprintf(stderr, "rpcbind: %v\n", err)
			return 1
		}
	}
	defer lock.Close()
	if os.Geteuid() != 0 && !dropped {
		fmt.Fprintln(stderr, "Sorry. You are not superuser")
		return 1
	}
	if !f.Foreground && !daemon.Detached() {
		return daemon.Detach(lock)
	}

	log, closeLog := newLogger(f, stderr, "")
	defer closeLog()

	d := &rpcbindDaemon{f: f, log: log, lock: lock, dropped: dropped}
	return d.run(ctx)
}

// newLogger logs to stderr with -f, else to syslog (at syslogPath; ""
// is the system's socket).
func newLogger(f *daemon.Flags, stderr io.Writer, syslogPath string) (*slog.Logger, func()) {
	level := slog.LevelInfo
	if f.Debug > 0 {
		level = slog.LevelDebug
	}
	var h slog.Handler = daemon.NewStderrHandler(stderr, level)
	closeFn := func() {}
	if !f.Foreground {
		sh, c := daemon.NewSyslogHandlerAt(level, syslogPath)
		h, closeFn = sh, func() { c.Close() }
	}
	return slog.New(daemon.NewRateLimited(h, denialRate, denialBurst)), closeFn
}

type rpcbindDaemon struct {
	f       *daemon.Flags
	log     *slog.Logger
	lock    *os.File           // the flocked lock file, handed over by a re-exec
	dropped bool               // re-executed by the privilege drop (privs.go)
	lim     *ratelimit.Limiter // UDP amplification control (harden.go)
	pruner  *guard.Pruner      // --prune; stopped before the final save
	// hostsFiles are hosts.allow and hosts.deny; "" is Debian's (tests
	// set them).
	hostsFiles [2]string
	mem        *memReleaser // gives memory back when the table is quiet (mem.go)
	// pruneTest, when set (tests), adjusts the pruner's configuration.
	pruneTest func(*guard.PruneConfig)
}

func (d *rpcbindDaemon) run(ctx context.Context) int {
	f, log := d.f, d.log
	ctx, stop := daemon.Signals(ctx)
	defer stop()
	d.mem = newMemReleaser()

	if n, err := raiseNoFile(); err != nil {
		log.Warn("cannot raise the descriptor limit: " + err.Error())
	} else {
		log.Debug("descriptor limit", "nofile", n)
	}
	socks, store, err := d.openAndDrop()
	if err != nil {
		log.Error(err.Error())
		return 1
	}
	table := registry.New(selfEntries(socks))

	notifier := systemd.NewNotifier()
	hl := newHealth(d, notifier, table, store, len(socks))
	stateDir, loaded := "", -1
	if store != nil {
		loaded = d.warmStart(table, store, hl)
		stateDir = f.StateDir
		defer store.Close()
	}

	var fwd *forward.Forwarder
	if f.Remote {
		fwd = forward.New(forward.Config{
			Err:   func(err error) { log.Debug("forward: " + err.Error()) },
			Allow: d.allowRelay,
			Reply: relayFrom(socks),
		})
		defer fwd.Close()
	}
	ifaces, err := ifaddr.New()
	if err != nil {
		log.Warn("interface list: " + err.Error())
		ifaces = nil
	} else {
		defer ifaces.Close()
	}
	h := d.handler(ctx, table, store, fwd, ifaces)
	srv := server.New(h, server.Options{Log: log, MaxConns: f.MaxConns, MaxConnsPerUID: f.MaxConnsPerUID, StreamEngine: f.StreamEngine,
		RecordsPerWakeup: f.RecordsPerWakeup, HeavyShare: f.HeavyShare, MaxHeldBytes: f.MaxHeldBytes,
		UDPReaders: server.LoopsFor(baseProcs), StreamLoops: server.LoopsFor(baseProcs)})
	procs := sizeProcs(srv.Waiters(socks))
	for _, s := range socks {
		if s.Listener != nil {
			l := newLoopListener(d.limitListener(s))
			s.Listener = l
			hl.loops = append(hl.loops, l)
		}
		srv.Start(s)
	}
	// The one line at start (issue 12): what it listens on, where its
	// state is; before the waits below, so that a stop at once still
	// finds it logged.
	log.Info(startLine(socks, stateDir, loaded, f.RunAs()))
	// READY=1 only once every serving loop runs (STYLE 11): the server's
	// UDP readers and accept loops, and the accept loops have called
	// Accept through their loopListeners (which the watchdog watches).
	if waitRunning(ctx, srv.Running()) == nil && waitLoops(ctx, hl.loops) == nil {
		status := hl.status()
		if _, err := notifier.Ready(status); err != nil {
			log.Warn("sd_notify: " + err.Error())
		}
		go hl.run(ctx, status)
		go hl.watchdog(ctx)
	}
	go d.mem.run(ctx)
	if err := daemon.Ready(); err != nil {
		log.Warn("detach: " + err.Error())
	}
	log.Debug("serving", "sockets", len(socks), "user", f.RunAs(), "gomaxprocs", procs)

	<-ctx.Done()
	notifier.Stopping()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown: " + err.Error())
	}
	d.save(table, store)
	return 0
}

// handler composes what the daemon serves, outermost first: the -d
// request log, the guard (UDP amplification control, registration caps,
// CHECK_PORT, pruning; harden.go), the service with the hosts.allow/deny
// check and the access and denial log (-l), and its statistics (GETSTAT).
// It sets d.lim, which the forwarder's relay check (allowRelay) reads too.
// The allocation test (alloc_test.go) serves through this very function.
func (d *rpcbindDaemon) handler(ctx context.Context, table *registry.Table, store *warmstart.Store,
	fwd *forward.Forwarder, ifaces *ifaddr.Cache) server.Handler {
	f := d.f
	d.lim = newLimiter(f)
	hostAllowed := d.hostsAllowed()
	svc := service.New(service.Config{
		Table:       table,
		Insecure:    f.Insecure,
		Forwarder:   fwd,
		Ifaces:      ifaces,
		HostAllowed: hostAllowed,
		Log:         d.event,
	})
	var h server.Handler = d.harden(ctx, svc, table, store, hostAllowed)
	if f.Debug > 0 {
		h = newDebugHandler(h, d.log)
	}
	return h
}

// openAndDrop does what needs root — binds the sockets, creates the state
// directory (0770, chowned, as the reference's mkdir_warmstart) — then
// drops privileges for good (daemon.DropPrivileges). A build with cgo
// re-executes itself to finish the drop: that daemon (d.dropped) takes its
// sockets from the handover, checks that the drop holds on every thread,
// and goes on from here. Any failure is fatal: the daemon never serves
// with privileges left (DECISIONS "privileges").
func (d *rpcbindDaemon) openAndDrop() ([]*server.Socket, *warmstart.Store, error) {
	f, log := d.f, d.log
	var socks []*server.Socket
	var err error
	if d.dropped {
		socks, err = handedSockets()
	} else {
		socks, err = d.sockets()
	}
	if err != nil {
		return nil, nil, err
	}
	closeAll := func() {
		for _, s := range socks {
			s.Close()
		}
	}
	uid, gid, err := daemon.LookupUser(f.RunAs())
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	store, err := warmstart.Open(f.StateDir, warmstart.Options{
		Chown: true, UID: uid, GID: gid,
		Logf: func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		log.Error("warm start: " + err.Error())
	}
	if d.dropped {
		err = daemon.VerifyDropped()
		if err == nil && (os.Getuid() != uid || os.Getgid() != gid) {
			err = fmt.Errorf("running as %d:%d, not as %s (%d:%d)", os.Getuid(), os.Getgid(), f.RunAs(), uid, gid)
		}
	} else {
		var h daemon.Handover
		if h, err = handover(socks, d.lock); err == nil {
			err = daemon.DropPrivileges(uid, gid, h)
		}
	}
	if err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("cannot drop privileges: %w", err)
	}
	return socks, store, nil
}

// sockets takes what systemd passed and creates the rest.
func (d *rpcbindDaemon) sockets() ([]*server.Socket, error) {
	f, log := d.f, d.log
	act := systemd.TakeActivated()
	for _, r := range act.Refused {
		if errors.Is(r.Err, systemd.ErrDualStack) {
			log.Error(systemd.DualStackLog[0])
			log.Error(systemd.DualStackLog[1])
			continue
		}
		log.Error(r.Error())
	}
	var socks []*server.Socket
	skip := map[string]bool{}
	for _, a := range act.Sockets {
		s := &server.Socket{Netid: a.Netid, Addr: a.Addr, Abstract: a.Abstract, Activated: true, Listener: a.Listener}
		if a.PacketConn != nil {
			uc, ok := a.PacketConn.(*net.UDPConn)
			if !ok {
				log.Error("systemd: passed datagram socket is not UDP", "fd", a.FD)
				continue
			}
			s.Packet = uc
		}
		// The listener or conn holds a dup; the passed descriptor itself
		// would only keep the socket open after a shutdown.
		a.File.Close()
		socks = append(socks, s)
	}
	for _, t := range systemd.Transports {
		if act.Passed(t) {
			if t.Abstract {
				skip["@"+t.Netid] = true
			} else {
				skip[t.Netid] = true
			}
		}
	}
	created, err := server.Listen(server.ListenConfig{
		UnixSocket:  f.Socket,
		Abstract:    !f.NoAbstract,
		Hosts:       f.Hosts,
		RestrictTCP: f.TCPHostRestrict,
		Skip:        skip,
		Log:         log,
	})
	act.CloseRefused()
	if err != nil && len(socks) == 0 {
		return nil, err
	}
	return append(socks, created...), nil
}

// selfEntries takes the first socket of each netid (with -h: the first -h
// address of the family, spec §2.4); the abstract socket is not registered.
func selfEntries(socks []*server.Socket) []registry.Entry {
	first := map[string]string{}
	for _, s := range socks {
		if s.Abstract {
			continue
		}
		if _, ok := first[s.Netid]; !ok {
			first[s.Netid] = s.Addr
		}
	}
	return registry.SelfEntries(first["tcp6"], first["udp6"], first["tcp"], first["udp"], first["local"])
}

// logStateErrors logs each of the errors a warm start met on a line of its
// own, in the reference's wording ("rpcbind: xdr_/run/rpcbind/rpcbind.xdr:
// failed", with the reason added): errors.Join separates them by newlines,
// and the package prefix would only repeat the daemon's name.
func logStateErrors(log *slog.Logger, err error) {
	if err == nil {
		return
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimPrefix(line, "warmstart: "); line != "" {
			log.Error(line)
		}
	}
}

// warmStart loads the saved registrations with -w, writes the fresh table
// either way, and makes every later change durable before it is
// acknowledged (DECISIONS "persistence"). It returns the number of
// registrations loaded, -1 without -w.
func (d *rpcbindDaemon) warmStart(table *registry.Table, store *warmstart.Store, hl *health) int {
	log := d.log
	loaded := -1
	if d.f.WarmStart {
		entries, err := store.Recover()
		logStateErrors(log, err)
		loaded = table.Load(entries)
	}
	if err := store.Compact(table.Entries()); err != nil {
		log.Error("warm start: cannot write the state files: " + err.Error())
	}
	// The observer (journal + the guard's counts) is installed by harden.
	// Keep serving from memory; log at most once a minute, report the
	// degraded state in STATUS=, retry on a timer (hl.run).
	table.OnError(func(op registry.Op, e registry.Entry, err error) { hl.persistErr(err) })
	return loaded
}

// procNames are the reference's names in access logs (security.c).
var procNames = [...]string{"null", "set", "unset", "getport/addr", "dump", "callit", "gettime",
	"uaddr2taddr", "taddr2uaddr", "getversaddr", "indirect", "getaddrlist", "getstat"}

// event logs access (-l) and denial events in the reference's words:
// "connect from <ip|local> to <proc>(<prog>)<text>", LOG_AUTH. The line is
// formatted on the stack and written without allocating (issue 13):
// denials are warnings, rate limited, and a dropped one costs an atomic
// add.
func (d *rpcbindDaemon) event(e service.Event) {
	level, text := slog.LevelWarn, ""
	switch e.Kind {
	case service.EventAccess:
		if !d.f.Verbose {
			return
		}
		level = slog.LevelInfo
	case service.EventNonLocal:
		text = " declined (non-loopback sender)"
	case service.EventHostDenied:
		text = " request from unauthorized host"
	case service.EventCallitDenied:
		text = " indirect call not allowed"
	}
	var buf [128]byte
	b := append(buf[:0], "connect from "...)
	if c := e.Caller; c != nil && !c.IsLocalSocket() {
		b = c.Addr.Addr().AppendTo(b)
	} else {
		b = append(b, "local"...)
	}
	b = append(b, " to "...)
	if int(e.Proc) < len(procNames) {
		b = append(b, procNames[e.Proc]...)
	} else {
		b = strconv.AppendUint(b, uint64(e.Proc), 10)
	}
	b = append(b, '(')
	if e.Prog == registry.ProgRPCB {
		b = append(b, "portmapper"...)
	} else {
		b = strconv.AppendUint(b, uint64(e.Prog), 10)
	}
	b = append(b, ')')
	b = append(b, text...)
	daemon.LogLine(d.log.Handler(), level, true, b)
}

// debugHandler logs every request and whether it was answered (-d):
// "request netid=udp from=127.0.0.1:700 len=56 answered=true
// reply_len=28" at LOG_DEBUG, formatted on the stack and written without
// allocating. It keeps next's stream fast path (ServeRPCTail): a DUMP is
// not copied because -d is on.
type debugHandler struct {
	next server.Handler
	tail server.TailHandler // nil when next has none
	log  slog.Handler
}

func newDebugHandler(next server.Handler, log *slog.Logger) *debugHandler {
	h := &debugHandler{next: next, log: log.Handler()}
	h.tail, _ = next.(server.TailHandler)
	return h
}

// ServeRPC implements server.Handler.
func (h *debugHandler) ServeRPC(out, req []byte, c *access.Caller) ([]byte, bool) {
	start := len(out)
	reply, send := h.next.ServeRPC(out, req, c)
	h.logRequest(c, len(req), send, len(reply)-start)
	return reply, send
}

// ServeRPCTail implements server.TailHandler.
func (h *debugHandler) ServeRPCTail(out, req []byte, c *access.Caller) (reply, tail []byte, send bool) {
	if h.tail == nil {
		reply, send = h.ServeRPC(out, req, c)
		return reply, nil, send
	}
	start := len(out)
	reply, tail, send = h.tail.ServeRPCTail(out, req, c)
	h.logRequest(c, len(req), send, len(reply)-start+len(tail))
	return reply, tail, send
}

func (h *debugHandler) logRequest(c *access.Caller, reqLen int, send bool, replyLen int) {
	var fb [64]byte
	from := fb[:0]
	switch {
	case c.IsLocalSocket():
		from = strconv.AppendInt(append(from, "local uid "...), int64(c.UID), 10)
	case c.Addr.IsValid():
		from = c.Addr.AppendTo(from)
	default:
		from = append(from, "invalid AddrPort"...)
	}
	var buf [160]byte
	b := append(buf[:0], "request"...)
	b = daemon.AppendString(b, "netid", c.Netid)
	b = daemon.AppendBytes(b, "from", from)
	b = daemon.AppendInt(b, "len", int64(reqLen))
	b = daemon.AppendBool(b, "answered", send)
	b = daemon.AppendInt(b, "reply_len", int64(replyLen))
	daemon.LogLine(h.log, slog.LevelDebug, false, b)
}

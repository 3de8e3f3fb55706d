package daemon

import (
	"fmt"
	"strconv"
	"strings"
)

// Usage is the reference's usage line, printed on stderr after a bad option
// (exit 1). Our long options are not in it, as in Debian's binary.
const Usage = "usage: rpcbind [-adhilswfr]"

// Default locations (Debian rpcbind 1.2.6).
const (
	DefaultLockFile = "/run/rpcbind.lock"
	DefaultSocket   = "/run/rpcbind.sock"
	DefaultStateDir = "/run/rpcbind"
	DefaultUser     = "_rpc"   // RPCBIND_USER as Debian builds it
	DaemonUser      = "daemon" // -s
)

// Flags is the parsed command line.
type Flags struct {
	Abort      bool     // -a: abort on errors (only with -d)
	Debug      int      // -d, counted
	Hosts      []string // -h, repeatable: UDP bind addresses
	Insecure   bool     // -i
	Verbose    bool     // -l: log every access
	DaemonUser bool     // -s: run as "daemon" instead of _rpc
	WarmStart  bool     // -w: read the state files at start
	Foreground bool     // -f
	Remote     bool     // -r: forward CALLIT/BCAST/INDIRECT (Debian)
	Version    bool     // --version (Debian's 1.2.6 rejects -v; we do too)
	Help       bool     // --help

	// GNU long options, ours (DECISIONS "new options").
	StateDir        string // --state-dir
	Socket          string // --socket: AF_UNIX path; the abstract twin is "@"+Socket
	LockFile        string // --lock-file
	User            string // --user: overrides _rpc / daemon
	MaxConns        int    // --max-conns; 0: the server's default
	TCPHostRestrict bool   // --tcp-host-restrict: -h applies to TCP as well
	NoAbstract      bool   // --no-abstract: do not listen on @/run/rpcbind.sock
	StreamEngine    string // --stream-engine: "epoll" (default) or "goroutine"

	// Stream budgets (issue 11); 0: the server's defaults.
	RecordsPerWakeup int // --records-per-wakeup: calls served per connection per event-loop turn
	HeavyShare       int // --heavy-share: percent of a loop's time heavy connections may take
	MaxHeldBytes     int // --max-held-bytes: memory held for stream clients

	// Hardening (issue 6). Zero values take the defaults of internal/guard
	// and internal/ratelimit.
	RefuseRemoteUDPDump bool    // --refuse-remote-udp-dump: UDP DUMP/GETSTAT from non-local sources → AUTH_TOOWEAK
	UDPRate             float64 // --udp-rate: amplifying UDP replies per second per source prefix
	UDPBurst            int     // --udp-burst
	NoHostsAccess       bool    // --no-hosts-access: ignore /etc/hosts.allow and hosts.deny
	MaxConnsPerSource   int     // --max-conns-per-source: open TCP connections per non-local IPv4 address or IPv6 /64
	MaxConnsPerUID      int     // --max-conns-per-uid: open local-socket connections per uid other than 0
	MaxRegsPerOwner     int     // --max-regs-per-owner: registrations per non-superuser owner
	MaxRegBytesPerOwner int     // --max-reg-bytes-per-owner: their bytes (strings + 32 per entry)
	CheckPort           bool    // --check-port: a SET of a port below 1024 or 2049 needs superuser
	Prune               bool    // --prune: remove dead registrations
	PruneInterval       int     // --prune-interval: seconds between sweeps
}

// UsageError is a bad command line. Msg is getopt's line (without the
// trailing newline); print it, then Usage, on stderr and exit 1.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

type longOpt struct {
	name   string
	hasArg bool
	set    func(f *Flags, v string) error
}

var longOpts = []longOpt{
	{"help", false, func(f *Flags, _ string) error { f.Help = true; return nil }},
	{"version", false, func(f *Flags, _ string) error { f.Version = true; return nil }},
	{"state-dir", true, func(f *Flags, v string) error { f.StateDir = v; return nil }},
	{"socket", true, func(f *Flags, v string) error { f.Socket = v; return nil }},
	{"lock-file", true, func(f *Flags, v string) error { f.LockFile = v; return nil }},
	{"user", true, func(f *Flags, v string) error { f.User = v; return nil }},
	{"max-conns", true, func(f *Flags, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("invalid --max-conns %q", v)
		}
		f.MaxConns = n
		return nil
	}},
	{"refuse-remote-udp-dump", false, func(f *Flags, _ string) error { f.RefuseRemoteUDPDump = true; return nil }},
	{"udp-rate", true, func(f *Flags, v string) error {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || !(r > 0) || r > 1e6 {
			return fmt.Errorf("invalid --udp-rate %q", v)
		}
		f.UDPRate = r
		return nil
	}},
	{"udp-burst", true, positive("udp-burst", func(f *Flags, n int) { f.UDPBurst = n })},
	{"no-hosts-access", false, func(f *Flags, _ string) error { f.NoHostsAccess = true; return nil }},
	{"max-conns-per-source", true, positive("max-conns-per-source", func(f *Flags, n int) { f.MaxConnsPerSource = n })},
	{"max-conns-per-uid", true, positive("max-conns-per-uid", func(f *Flags, n int) { f.MaxConnsPerUID = n })},
	{"max-regs-per-owner", true, positive("max-regs-per-owner", func(f *Flags, n int) { f.MaxRegsPerOwner = n })},
	{"max-reg-bytes-per-owner", true, positive("max-reg-bytes-per-owner", func(f *Flags, n int) { f.MaxRegBytesPerOwner = n })},
	{"check-port", false, func(f *Flags, _ string) error { f.CheckPort = true; return nil }},
	{"prune", false, func(f *Flags, _ string) error { f.Prune = true; return nil }},
	{"prune-interval", true, positive("prune-interval", func(f *Flags, n int) { f.PruneInterval = n })},
	{"tcp-host-restrict", false, func(f *Flags, _ string) error { f.TCPHostRestrict = true; return nil }},
	{"no-abstract", false, func(f *Flags, _ string) error { f.NoAbstract = true; return nil }},
	{"records-per-wakeup", true, positive("records-per-wakeup", func(f *Flags, n int) { f.RecordsPerWakeup = n })},
	{"heavy-share", true, func(f *Flags, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return fmt.Errorf("invalid --heavy-share %q (a percentage, 1 to 100)", v)
		}
		f.HeavyShare = n
		return nil
	}},
	{"max-held-bytes", true, positive("max-held-bytes", func(f *Flags, n int) { f.MaxHeldBytes = n })},
	{"stream-engine", true, func(f *Flags, v string) error {
		if v != "epoll" && v != "goroutine" {
			return fmt.Errorf("invalid --stream-engine %q (epoll or goroutine)", v)
		}
		f.StreamEngine = v
		return nil
	}},
}

// positive parses a positive integer option.
func positive(name string, set func(f *Flags, n int)) func(f *Flags, v string) error {
	return func(f *Flags, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("invalid --%s %q", name, v)
		}
		set(f, n)
		return nil
	}
}

// Help is the text of --help (stdout, exit 0).
const Help = `usage: rpcbind [-adhilswfr] [long options]
  -a                 abort on errors (with -d)
  -d                 debug: log every request (repeat for more)
  -f                 foreground: do not detach, log to stderr
  -h addr            bind UDP to addr (repeatable; 127.0.0.1 and ::1 are added)
  -i                 insecure: allow SET/UNSET from any host
  -l                 log every access
  -r                 forward CALLIT/BCAST/INDIRECT calls
  -s                 run as user daemon instead of _rpc
  -w                 warm start: reload registrations saved by the previous run
  --help             this text
  --version          print the reference's version, ours and Go's
  --state-dir=DIR    state files (default /run/rpcbind)
  --socket=PATH      AF_UNIX socket (default /run/rpcbind.sock)
  --lock-file=PATH   lock file (default /run/rpcbind.lock)
  --user=NAME        user to run as after binding (default _rpc, -s: daemon)
  --max-conns=N      cap on open TCP and local connections (default 1024)
  --tcp-host-restrict  apply -h to TCP as well
  --no-abstract      do not listen on the abstract socket @/run/rpcbind.sock
  --stream-engine=E  serve TCP and local connections with epoll event loops
                     (default) or a goroutine per connection (goroutine)
  --records-per-wakeup=N  calls served per connection before an event loop
                     turns to the other connections (default 16)
  --heavy-share=P    percent of each event loop's time that connections
                     pipelining calls or asking for large replies (GETSTAT,
                     DUMP) may take together, 1-100 (default 50)
  --max-held-bytes=N bytes held for stream clients (unread replies, DUMP
                     encodings, unprocessed input); over it the client
                     holding the most is closed (default 16777216)
  --max-conns-per-source=N  open TCP connections per non-local IPv4 address or
                            IPv6 /64 (default 64)
  --max-conns-per-uid=N     open local-socket connections per uid; root exempt
                            (default 64)
  --max-regs-per-owner=N    registrations per non-superuser owner (default 1024)
  --max-reg-bytes-per-owner=N  bytes of those registrations: netid, address and
                     owner strings plus 32 per entry (default 262144)
  --udp-rate=N       amplifying UDP replies per second per non-local /24 or /56 (default 20)
  --udp-burst=N      burst of the same (default 100)
  --refuse-remote-udp-dump  refuse UDP DUMP/GETSTAT from non-local hosts (use TCP)
  --no-hosts-access  do not consult /etc/hosts.allow and /etc/hosts.deny
  --check-port       registering a port below 1024 or the NFS port 2049 (as
                     clients will read it) requires a superuser caller
  --prune            remove registrations whose process or TCP listener is gone
  --prune-interval=S seconds between pruning sweeps (default 10)
`

// Parse parses args (without the program name) as GNU getopt_long does
// with the short options "adh:ilswfr" (Debian's 1.2.6: -v is an invalid
// option, as there): combined flags (-wf, -dfw),
// attached or separate -h arguments, "--" ending the options, and
// non-option arguments permuted away (and, as in the reference, ignored).
// argv0 prefixes error messages, as getopt uses argv[0].
func Parse(argv0 string, args []string) (*Flags, error) {
	f := &Flags{StateDir: DefaultStateDir, Socket: DefaultSocket, LockFile: DefaultLockFile}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return f, nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			var o *longOpt
			for j := range longOpts {
				if longOpts[j].name == name {
					o = &longOpts[j]
				}
			}
			if o == nil {
				return nil, &UsageError{fmt.Sprintf("%s: unrecognized option '%s'", argv0, a)}
			}
			if !o.hasArg && hasVal {
				return nil, &UsageError{fmt.Sprintf("%s: option '--%s' doesn't allow an argument", argv0, name)}
			}
			if o.hasArg && !hasVal {
				if i+1 >= len(args) {
					return nil, &UsageError{fmt.Sprintf("%s: option '--%s' requires an argument", argv0, name)}
				}
				i++
				val = args[i]
			}
			if err := o.set(f, val); err != nil {
				return nil, &UsageError{fmt.Sprintf("%s: %v", argv0, err)}
			}
		case len(a) > 1 && a[0] == '-':
			for k := 1; k < len(a); k++ {
				switch c := a[k]; c {
				case 'a':
					f.Abort = true
				case 'd':
					f.Debug++
				case 'i':
					f.Insecure = true
				case 'l':
					f.Verbose = true
				case 's':
					f.DaemonUser = true
				case 'w':
					f.WarmStart = true
				case 'f':
					f.Foreground = true
				case 'r':
					f.Remote = true
				case 'h':
					if k+1 < len(a) {
						f.Hosts = append(f.Hosts, a[k+1:])
					} else if i+1 < len(args) {
						i++
						f.Hosts = append(f.Hosts, args[i])
					} else {
						return nil, &UsageError{fmt.Sprintf("%s: option requires an argument -- 'h'", argv0)}
					}
					k = len(a)
				default:
					return nil, &UsageError{fmt.Sprintf("%s: invalid option -- '%c'", argv0, c)}
				}
			}
		default:
			// A non-option argument ("-" included): getopt permutes it to
			// the end and rpcbind never looks at it.
		}
	}
	return f, nil
}

// RunAs is the user to switch to after binding.
func (f *Flags) RunAs() string {
	switch {
	case f.User != "":
		return f.User
	case f.DaemonUser:
		return DaemonUser
	}
	return DefaultUser
}

package main

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config holds what the reference hard-wires; tests point it at fakes.
type Config struct {
	Socket  string // rpcbind's AF_LOCAL socket, _PATH_RPCBINDSOCK
	Port    uint16 // rpcbind's well-known port, "sunrpc"
	RPCFile string // the program-name database

	DumpTimeout    time.Duration // DUMP, GETSTAT, GETADDRLIST: 60 s
	PingTimeout    time.Duration // NULL pings: 10 s
	LookupTimeout  time.Duration // rpcb_getaddr, rpcb_unset: libtirpc's 60 s total
	ConnectTimeout time.Duration // connecting a stream
	Retransmit     time.Duration // UDP resend interval: clnt_dg's 15 s
	BcastInit      time.Duration // rpc_broadcast's first wait: 4 s (INITTIME)
	BcastWait      time.Duration // and its last: 8 s (WAITTIME); each round doubles
	BcastLimit     time.Duration // ours only: the whole broadcast, whatever the replies
	Euid           int
}

// DefaultConfig is the reference's behaviour.
func DefaultConfig() Config {
	return Config{
		Socket:         "/run/rpcbind.sock",
		Port:           111,
		RPCFile:        "/etc/rpc",
		DumpTimeout:    60 * time.Second,
		PingTimeout:    10 * time.Second,
		LookupTimeout:  60 * time.Second,
		ConnectTimeout: 60 * time.Second,
		Retransmit:     15 * time.Second,
		BcastInit:      4 * time.Second,
		BcastWait:      8 * time.Second,
		BcastLimit:     60 * time.Second,
		Euid:           os.Geteuid(),
	}
}

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr, DefaultConfig()))
}

// app is one run of rpcinfo.
type app struct {
	cfg    Config
	prog   string // argv[0], as getopt prints it
	short  string // its base name, as errx prints it
	stdout *bufio.Writer
	stderr stringWriter
	db     rpcDB
	dbDone bool
}

type stringWriter interface{ WriteString(string) (int, error) }

// exitCode is panicked by exit to unwind to run, mirroring the C
// program's many exit() calls.
type exitCode int

func (a *app) exit(code int) { panic(exitCode(code)) }

// run executes rpcinfo with args (args[0] is the program name) and returns
// the exit status.
func run(args []string, stdout, stderr io.Writer, cfg Config) (code int) {
	a := &app{cfg: cfg, stdout: bufio.NewWriter(stdout), stderr: asStringWriter(stderr)}
	a.prog = "rpcinfo"
	if len(args) > 0 {
		a.prog = args[0]
		a.short = filepath.Base(args[0])
	}
	if a.short == "" {
		a.short = "rpcinfo"
	}
	defer func() {
		a.stdout.Flush()
		if r := recover(); r != nil {
			c, ok := r.(exitCode)
			if !ok {
				panic(r)
			}
			code = int(c)
		}
	}()
	return a.main(args)
}

func asStringWriter(w io.Writer) stringWriter {
	if sw, ok := w.(stringWriter); ok {
		return sw
	}
	return writerString{w}
}

type writerString struct{ w io.Writer }

func (w writerString) WriteString(s string) (int, error) { return w.w.Write([]byte(s)) }

func (a *app) rpcdb() rpcDB {
	if !a.dbDone {
		a.db, a.dbDone = loadRPCDB(a.cfg.RPCFile), true
	}
	return a.db
}

// Functions, as in the reference.
const (
	fnNone = iota
	fnPmapDump
	fnTCPPing
	fnUDPPing
	fnBroadcast
	fnDelete
	fnAddrPing
	fnProgPing
	fnRPCBDump
	fnRPCBDumpShort
	fnAddrList
	fnGetStat
)

const usageText = "Usage: rpcinfo [-m | -s] [host]\n" +
	"       rpcinfo -p [host]\n" +
	"       rpcinfo -T netid host prognum [versnum]\n" +
	"       rpcinfo -l host prognum versnum\n" +
	"       rpcinfo [-n portnum] -u | -t host prognum [versnum]\n" +
	"       rpcinfo -a serv_address -T netid prognum [version]\n" +
	"       rpcinfo -b prognum versnum\n" +
	"       rpcinfo -d [-T netid] prognum versnum\n"

func (a *app) usage() { a.stderr.WriteString(usageText) }

// usageExit prints the usage and exits 1.
func (a *app) usageExit() {
	a.usage()
	a.exit(1)
}

func (a *app) main(args []string) int {
	function := fnNone
	errflg := false
	var netid, address string
	haveNetid := false
	portnum := uint16(0)
	set := func(f int) {
		if function != fnNone {
			errflg = true
		} else {
			function = f
		}
	}
	g := getopt{args: args, optstring: "a:bdlmn:pstT:u", prog: a.prog, stderr: a.stderr,
		posix: os.Getenv("POSIXLY_CORRECT") != ""}
	for {
		c, optarg, ok := g.next()
		if !ok {
			break
		}
		switch c {
		case 'p':
			set(fnPmapDump)
		case 't':
			set(fnTCPPing)
		case 'u':
			set(fnUDPPing)
		case 'n':
			v, ok := strtol(optarg)
			if !ok {
				a.stderr.WriteString("rpcinfo: " + optarg + " is illegal port number\n")
				a.exit(1)
			}
			portnum = uint16(v)
		case 'a':
			address = optarg
			set(fnAddrPing)
		case 'b':
			set(fnBroadcast)
		case 'd':
			set(fnDelete)
		case 'l':
			set(fnAddrList)
		case 'm':
			set(fnGetStat)
		case 's':
			set(fnRPCBDumpShort)
		case 'T':
			netid, haveNetid = optarg, true
		case '?':
			errflg = true
		}
	}
	rest := g.operands()
	if errflg || (function == fnAddrPing && !haveNetid) {
		a.usage()
		return 1
	}
	if function == fnNone {
		if len(rest) > 1 {
			function = fnProgPing
		} else {
			function = fnRPCBDump
		}
	}
	var np *string
	if haveNetid {
		np = &netid
	}
	switch function {
	case fnPmapDump:
		if portnum != 0 {
			a.usage()
			return 1
		}
		a.pmapDump(rest)
	case fnUDPPing:
		// The reference parses -n and then ignores it (rpcbind 1.2.6).
		a.ipPing("udp", rest)
	case fnTCPPing:
		a.ipPing("tcp", rest)
	case fnBroadcast:
		a.broadcast(rest)
	case fnDelete:
		a.deleteReg(np, rest)
	case fnAddrPing:
		a.addrPing(address, np, rest)
	case fnProgPing:
		a.progPing(np, rest)
	case fnRPCBDump, fnRPCBDumpShort:
		a.rpcbDump(function == fnRPCBDumpShort, np, rest)
	case fnGetStat:
		a.getStat(rest)
	case fnAddrList:
		a.addrList(np, rest)
	}
	return 0
}

// getprognum is the reference's: a number made only of digits, else a name
// from the rpc database.
func (a *app) getprognum(arg string) uint64 {
	// The C loop stops one past the first non-digit; a name is looked up
	// when anything follows it or when it is a letter.
	i := 0
	for i < len(arg) && arg[i] >= '0' && arg[i] <= '9' {
		i++
	}
	if i < len(arg) && (i+1 < len(arg) || isAlpha(arg[i])) {
		n, ok := a.rpcdb().byName(arg)
		if !ok {
			a.stderr.WriteString("rpcinfo: " + arg + " is unknown service\n")
			a.exit(1)
		}
		return uint64(n)
	}
	v, ok := strtol(arg)
	if !ok {
		a.stderr.WriteString("rpcinfo: " + arg + " is illegal program number\n")
		a.exit(1)
	}
	return uint64(v)
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// getvers is the reference's: strtol truncated to an int, then widened to
// an unsigned long.
func (a *app) getvers(arg string) uint64 {
	v, ok := strtol(arg)
	if !ok {
		a.stderr.WriteString("rpcinfo: " + arg + " is illegal version number\n")
		a.exit(1)
	}
	return uint64(int64(int32(v)))
}

func ulong(v uint64) string { return strconv.FormatUint(v, 10) }

// getopt is GNU getopt as glibc runs it: options may follow operands
// (argv is permuted) unless POSIXLY_CORRECT is set; "--" ends options.
type getopt struct {
	args      []string
	optstring string
	prog      string
	stderr    stringWriter
	posix     bool

	i    int    // next argument
	sub  string // rest of a cluster of options
	ops  []string
	done bool
}

func (g *getopt) next() (c byte, optarg string, ok bool) {
	if g.i == 0 {
		g.i = 1
	}
	for g.sub == "" {
		if g.done || g.i >= len(g.args) {
			g.done = true
			return 0, "", false
		}
		arg := g.args[g.i]
		g.i++
		switch {
		case arg == "--":
			g.ops = append(g.ops, g.args[g.i:]...)
			g.i = len(g.args)
			g.done = true
			return 0, "", false
		case len(arg) < 2 || arg[0] != '-':
			g.ops = append(g.ops, arg)
			if g.posix {
				g.ops = append(g.ops, g.args[g.i:]...)
				g.i = len(g.args)
				g.done = true
				return 0, "", false
			}
			continue
		}
		g.sub = arg[1:]
	}
	c = g.sub[0]
	g.sub = g.sub[1:]
	k := strings.IndexByte(g.optstring, c)
	if k < 0 || c == ':' {
		g.stderr.WriteString(g.prog + ": invalid option -- '" + string(c) + "'\n")
		return '?', "", true
	}
	if k+1 < len(g.optstring) && g.optstring[k+1] == ':' {
		if g.sub != "" {
			optarg, g.sub = g.sub, ""
			return c, optarg, true
		}
		if g.i >= len(g.args) {
			g.stderr.WriteString(g.prog + ": option requires an argument -- '" + string(c) + "'\n")
			return '?', "", true
		}
		optarg = g.args[g.i]
		g.i++
		return c, optarg, true
	}
	return c, "", true
}

// operands returns the non-option arguments in order.
func (g *getopt) operands() []string { return g.ops }

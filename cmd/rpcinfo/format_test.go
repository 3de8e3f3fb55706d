package main

import (
	"strings"
	"testing"

	"github.com/openrpcbind/rpcbind/pmap"
)

const testRPC = `# comment line
portmapper	100000	portmap sunrpc rpcbind
status		100024
nfs		100003	nfsprog # trailing comment
broken
fypxfrd		600100069	freebsd-ypxfrd
`

func TestParseRPCDB(t *testing.T) {
	db := parseRPCDB(strings.NewReader(testRPC))
	for _, tc := range []struct {
		name string
		num  uint32
		ok   bool
	}{
		{"portmapper", 100000, true},
		{"sunrpc", 100000, true}, // alias
		{"rpcbind", 100000, true},
		{"nfsprog", 100003, true},
		{"freebsd-ypxfrd", 600100069, true},
		{"broken", 0, false}, // no number: skipped
		{"comment", 0, false},
		{"#", 0, false},
	} {
		n, ok := db.byName(tc.name)
		if n != tc.num || ok != tc.ok {
			t.Errorf("byName(%q) = %d, %v; want %d, %v", tc.name, n, ok, tc.num, tc.ok)
		}
	}
	if name, ok := db.byNumber(100024); name != "status" || !ok {
		t.Errorf("byNumber(100024) = %q, %v", name, ok)
	}
	if _, ok := db.byNumber(1); ok {
		t.Error("byNumber(1) found a name")
	}
}

// Appendix A: a fresh reference daemon's table, in DUMP order.
var freshDump = []pmap.RPCBEntry{
	{Prog: 100000, Vers: 4, Netid: "tcp6", Addr: "::.0.111", Owner: "superuser"},
	{Prog: 100000, Vers: 3, Netid: "tcp6", Addr: "::.0.111", Owner: "superuser"},
	{Prog: 100000, Vers: 4, Netid: "udp6", Addr: "::.0.111", Owner: "superuser"},
	{Prog: 100000, Vers: 3, Netid: "udp6", Addr: "::.0.111", Owner: "superuser"},
	{Prog: 100000, Vers: 4, Netid: "tcp", Addr: "0.0.0.0.0.111", Owner: "superuser"},
	{Prog: 100000, Vers: 3, Netid: "tcp", Addr: "0.0.0.0.0.111", Owner: "superuser"},
	{Prog: 100000, Vers: 2, Netid: "tcp", Addr: "0.0.0.0.0.111", Owner: "superuser"},
	{Prog: 100000, Vers: 4, Netid: "udp", Addr: "0.0.0.0.0.111", Owner: "superuser"},
	{Prog: 100000, Vers: 3, Netid: "udp", Addr: "0.0.0.0.0.111", Owner: "superuser"},
	{Prog: 100000, Vers: 2, Netid: "udp", Addr: "0.0.0.0.0.111", Owner: "superuser"},
	{Prog: 100000, Vers: 4, Netid: "local", Addr: "/run/rpcbind.sock", Owner: "superuser"},
	{Prog: 100000, Vers: 3, Netid: "local", Addr: "/run/rpcbind.sock", Owner: "superuser"},
}

// Goldens: spec Appendix A, the reference rpcinfo's output.
const (
	goldenDump = `   program version netid     address                service    owner
    100000    4    tcp6      ::.0.111               portmapper superuser
    100000    3    tcp6      ::.0.111               portmapper superuser
    100000    4    udp6      ::.0.111               portmapper superuser
    100000    3    udp6      ::.0.111               portmapper superuser
    100000    4    tcp       0.0.0.0.0.111          portmapper superuser
    100000    3    tcp       0.0.0.0.0.111          portmapper superuser
    100000    2    tcp       0.0.0.0.0.111          portmapper superuser
    100000    4    udp       0.0.0.0.0.111          portmapper superuser
    100000    3    udp       0.0.0.0.0.111          portmapper superuser
    100000    2    udp       0.0.0.0.0.111          portmapper superuser
    100000    4    local     /run/rpcbind.sock      portmapper superuser
    100000    3    local     /run/rpcbind.sock      portmapper superuser
`
	goldenShort = `   program version(s) netid(s)                         service     owner
    100000  2,3,4     local,udp,tcp,udp6,tcp6          portmapper  superuser
`
	goldenPmap = `   program vers proto   port  service
    100000    4   tcp    111  portmapper
    100000    3   tcp    111  portmapper
    100000    2   tcp    111  portmapper
    100000    4   udp    111  portmapper
    100000    3   udp    111  portmapper
    100000    2   udp    111  portmapper
`
	goldenStat = `PORTMAP (version 2) statistics
NULL    SET     UNSET   GETPORT DUMP    CALLIT  
0       0/0     0/0     0/0     1       0/0     

RPCBIND (version 3) statistics
NULL    SET     UNSET   GETADDR DUMP    CALLIT  TIME    U2T     T2U     
0       0/0     0/0     0/0     2       0/0     0       0       0       

RPCBIND (version 4) statistics
NULL    SET     UNSET   GETADDR DUMP    CALLIT  TIME    U2T     T2U     
0       0/0     0/0     0/0     0       0/0     0       0       0       
VERADDR INDRECT GETLIST GETSTAT 
0       0       0       1       
`
	// Captured from the reference rpcinfo -l 127.0.0.1 100000 4.
	goldenAddrList = "   program vers  tp_family/name/class    address\t\t  service\n" +
		"    100000  4    inet/tcp/cots_ord       127.0.0.1.0.111          portmapper   \n" +
		"    100000  4    inet/udp/clts           127.0.0.1.0.111          portmapper   \n"
)

func TestFormats(t *testing.T) {
	db := parseRPCDB(strings.NewReader(testRPC))
	if got := formatDump(freshDump, db); got != goldenDump {
		t.Errorf("formatDump:\n%s\nwant\n%s", got, goldenDump)
	}
	if got := formatDumpShort(freshDump, db); got != goldenShort {
		t.Errorf("formatDumpShort:\n%s\nwant\n%s", got, goldenShort)
	}
	var ms []pmap.Mapping
	for _, p := range []uint32{pmap.IPProtoTCP, pmap.IPProtoUDP} {
		for _, v := range []uint32{4, 3, 2} {
			ms = append(ms, pmap.Mapping{Prog: 100000, Vers: v, Prot: p, Port: 111})
		}
	}
	if got := formatPmapDump(ms, db); got != goldenPmap {
		t.Errorf("formatPmapDump:\n%s\nwant\n%s", got, goldenPmap)
	}
	var st [pmap.NumStatVers]pmap.Stat
	st[0].Info[pmap.PmapProcDump] = 1
	st[1].Info[pmap.RPCBProcDump] = 2
	st[2].Info[pmap.RPCBProcGetStat] = 1
	if got := formatStat(&st, db); got != goldenStat {
		t.Errorf("formatStat:\n%s\nwant\n%s", got, goldenStat)
	}
	es := []pmap.Entry{
		{Maddr: "127.0.0.1.0.111", Netid: "tcp", Semantics: pmap.NCTPICotsOrd, Protofmly: "inet", Proto: "tcp"},
		{Maddr: "127.0.0.1.0.111", Netid: "udp", Semantics: pmap.NCTPIClts, Protofmly: "inet", Proto: "udp"},
	}
	if got := formatAddrList(100000, 4, es, db); got != goldenAddrList {
		t.Errorf("formatAddrList:\n%s\nwant\n%s", got, goldenAddrList)
	}
	for name, got := range map[string]string{
		"dump": formatDump(nil, db), "short": formatDumpShort(nil, db),
		"pmap": formatPmapDump(nil, db), "addrlist": formatAddrList(1, 1, nil, db),
	} {
		if got != noPrograms {
			t.Errorf("%s of an empty list: %q", name, got)
		}
	}
}

// The v2 fallback of rpcinfo [host] as the reference converts it.
func TestPmapToRPCB(t *testing.T) {
	got := pmapToRPCB([]pmap.Mapping{{Prog: 7, Vers: 1, Prot: 17, Port: 1000}, {Prog: 7, Vers: 1, Prot: 99, Port: 70000}})
	want := []pmap.RPCBEntry{
		{Prog: 7, Vers: 1, Netid: "udp", Addr: "0.0.0.0.3.232", Owner: "unknown"},
		{Prog: 7, Vers: 1, Netid: "    99", Addr: "0.0.0.0.17.112", Owner: "unknown"},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("pmapToRPCB = %+v, want %+v", got, want)
	}
}

// The netid column is cut where the reference's 256-byte buffer cuts it.
func TestNetidColumn(t *testing.T) {
	if got := netidColumn([]string{"local", "udp"}); got != "local,udp" {
		t.Errorf("got %q", got)
	}
	long := strings.Repeat("n", 300)
	if got := netidColumn([]string{"udp", long, "tcp"}); got != "udp,"+long[:251] {
		t.Errorf("got %d bytes %q...", len(got), got[:10])
	}
}

// Argument handling: the reference's messages and exit codes (captured
// from /usr/sbin/rpcinfo of rpcbind 1.2.6-6+b1).
func TestArguments(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Socket = "/nonexistent/rpcbind.sock"
	cfg.RPCFile = "/nonexistent"
	usage := usageText
	for _, tc := range []struct {
		args   []string
		stderr string
		code   int
	}{
		{[]string{"-x"}, "rpcinfo: invalid option -- 'x'\n" + usage, 1},
		{[]string{"-T"}, "rpcinfo: option requires an argument -- 'T'\n" + usage, 1},
		{[]string{"-p", "-s"}, usage, 1},
		{[]string{"-n", "abc", "-p"}, "rpcinfo: abc is illegal port number\n", 1},
		{[]string{"-n", "12", "-p"}, usage, 1},
		{[]string{"-a", "x", "1"}, usage, 1},
		{[]string{"-d", "1"}, usage, 1},
		{[]string{"-l", "1", "2"}, usage, 1},
		{[]string{"-s", "a", "b"}, usage, 1},
		{[]string{"-d", "foo", "bar"}, "rpcinfo: bar is illegal version number\n", 1},
		{[]string{"-b", "foo", "bar"}, "rpcinfo: foo is unknown service\n", 1},
		{[]string{"-b", "1a", "2"}, "rpcinfo: 1a is unknown service\n", 1},
		{[]string{"-b", "12-", "2"}, "rpcinfo: 12- is illegal program number\n", 1},
		{[]string{"-b", "1", "-1"}, "rpcinfo: invalid option -- '1'\n" + usage, 1},
		{[]string{"-d", "-T", "foo", "1", "1"}, "rpcinfo: netid foo not supported\n", 1},
		{[]string{"-T", "foo", "127.0.0.1", "1"}, "rpcinfo: Could not find foo\n", 1},
		{[]string{"-T", "foo", "127.0.0.1"}, "rpcinfo: invalid transport: Netid not found in netconfig database\n", 1},
		{[]string{"-a", "junk", "-T", "udp", "1", "1"}, "rpcinfo: rpcinfo: no address for client handle\n", 1},
		{[]string{"127.0.0.1", "100000"}, usage, 1},
		{nil, "rpcinfo: can't contact rpcbind: RPC: Remote system error - No such file or directory\n", 1},
		{[]string{"-p"}, "rpcinfo: can't contact portmapper: RPC: Remote system error - No such file or directory\n", 1},
	} {
		r := runWith(cfg, tc.args...)
		if r.stderr != tc.stderr || r.code != tc.code || r.stdout != "" {
			t.Errorf("rpcinfo %q: exit %d stdout %q stderr %q; want exit %d stderr %q",
				tc.args, r.code, r.stdout, r.stderr, tc.code, tc.stderr)
		}
	}
}

func TestGetvers(t *testing.T) {
	a := &app{}
	for in, want := range map[string]uint64{
		"2": 2, "+2": 2, " 2": 2, "-1": 1<<64 - 1, "4294967295": 1<<64 - 1, "99999999999": 1215752191,
	} {
		if got := a.getvers(in); got != want {
			t.Errorf("getvers(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestSperror(t *testing.T) {
	for _, tc := range []struct {
		e    rpcErr
		want string
	}{
		{rpcErr{Stat: rpcProgVersMismatch, Low: 2, High: 4}, "rpcinfo: RPC: Program/version mismatch; low version = 2, high version = 4"},
		{rpcErr{Stat: rpcCantRecv, Errno: 111}, "rpcinfo: RPC: Unable to receive; errno = Connection refused"},
		{rpcErr{Stat: rpcAuthError, Why: 5}, "rpcinfo: RPC: Authentication error; why = Client credential too weak"},
		{rpcErr{Stat: rpcAuthError, Why: 9}, "rpcinfo: RPC: Authentication error; why = (unknown authentication error - 9)"},
		{rpcErr{Stat: rpcTimedOut}, "rpcinfo: RPC: Timed out"},
	} {
		if got := tc.e.sperror("rpcinfo"); got != tc.want {
			t.Errorf("sperror = %q, want %q", got, tc.want)
		}
	}
	ce := createErr{Stat: rpcN2AXlateFailure}
	if got := ce.spcreateerror("rpcinfo: can't contact rpcbind"); got != "rpcinfo: can't contact rpcbind: RPC: (unknown error code)" {
		t.Errorf("spcreateerror = %q", got)
	}
}

func FuzzParseRPCDB(f *testing.F) {
	f.Add(testRPC)
	f.Add("a 1 b c\n#x\n\n  \t 2\n")
	f.Fuzz(func(t *testing.T, s string) {
		db := parseRPCDB(strings.NewReader(s))
		for _, e := range db {
			if n, ok := db.byName(e.Name); !ok || (n != e.Number && e.Name == "") {
				t.Fatalf("byName(%q) lost", e.Name)
			}
		}
	})
}

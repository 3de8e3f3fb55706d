package e2e

import (
	"encoding/binary"
	"net"
	"os"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/nstest"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// Appendix A of the spec: a fresh `rpcbind -f -w`, Debian 1.2.6-6+b1.
const (
	goldenRpcinfo = `   program version netid     address                service    owner
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
	goldenRpcinfoP = `   program vers proto   port  service
    100000    4   tcp    111  portmapper
    100000    3   tcp    111  portmapper
    100000    2   tcp    111  portmapper
    100000    4   udp    111  portmapper
    100000    3   udp    111  portmapper
    100000    2   udp    111  portmapper
`
	goldenRpcinfoS = `   program version(s) netid(s)                         service     owner
    100000  2,3,4     local,udp,tcp,udp6,tcp6          portmapper  superuser
`
	goldenRpcinfoM = `PORTMAP (version 2) statistics
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
)

// TestFreshGoldens checks every implementation against the transcripts of
// spec Appendix A, in that order (the -m counts depend on it).
func TestFreshGoldens(t *testing.T) {
	env, ok := Enter(t)
	if !ok {
		return
	}
	env.ForEach(t, func(t *testing.T, impl Impl, d *nstest.Daemon) {
		for _, c := range []struct{ cmd, want string }{
			{"rpcinfo", goldenRpcinfo},
			{"rpcinfo -p", goldenRpcinfoP},
			{"rpcinfo -s", goldenRpcinfoS},
			{"rpcinfo -m", goldenRpcinfoM},
		} {
			r := env.Run(t, c.cmd)
			if r.Exit != 0 || r.Stderr != "" || r.Stdout != c.want {
				t.Errorf("%s:\n%s\nwant stdout:\n%s", impl.Name, r, c.want)
			}
		}
	})
}

// TestRpcinfo runs the real rpcinfo's modes (spec §6.3) side by side.
func TestRpcinfo(t *testing.T) {
	env, ok := Enter(t)
	if !ok {
		return
	}
	env.Compare(t,
		"rpcinfo",
		"rpcinfo -p",
		"rpcinfo -s",
		"rpcinfo 127.0.0.1",
		"rpcinfo -s 127.0.0.1",
		"rpcinfo -p 127.0.0.1",
		"rpcinfo ::1",
		"rpcinfo -T udp 127.0.0.1",
		"rpcinfo -l 127.0.0.1 100000 4",
		"rpcinfo -l 127.0.0.1 100000 2",
		"rpcinfo -l ::1 100000 3",
		"rpcinfo -t 127.0.0.1 100000",
		"rpcinfo -u 127.0.0.1 100000",
		"rpcinfo -u 127.0.0.1 100000 2",
		"rpcinfo -u 127.0.0.1 100000 5",
		"rpcinfo -t 127.0.0.1 300000",
		"rpcinfo -T tcp6 ::1 100000",
		"rpcinfo -T udp6 ::1 100000 4",
		"rpcinfo -n 111 -u 127.0.0.1 100000 2",
		"rpcinfo -a 127.0.0.1.0.111 -T udp 100000 3",
		"rpcinfo -a ::1.0.111 -T tcp6 100000",
		"rpcinfo -m",
		"rpcinfo -m 127.0.0.1",
	)
}

// TestRegistrations sets and unsets through libtirpc and rpcinfo -d, as
// root and as nobody, then restarts the daemon to read its warm-start files.
func TestRegistrations(t *testing.T) {
	env, ok := Enter(t)
	if !ok {
		return
	}
	env.Compare(t,
		"tirpcclient set 300000 1 tcp 0.0.0.0.3.232",
		"tirpcclient set 300000 1 tcp 0.0.0.0.3.232",
		"tirpcclient set 300000 1 tcp 0.0.0.0.3.233",
		"tirpcclient set 300000 1 udp 0.0.0.0.3.232",
		"tirpcclient set 300000 1 udp6 ::.3.232",
		"tirpcclient set 300000 1 tcp6 ::.3.232",
		"tirpcclient set 300000 2 udp6 ::.3.233",
		"tirpcclient pmapset 300001 2 udp 1234",
		"tirpcclient pmapset 300001 2 tcp 1235",
		"tirpcclient pmapset 300001 3 99 1236",
		"@nobody tirpcclient set 300002 1 tcp 0.0.0.0.3.234",
		"@nobody tirpcclient unset 300000 1 -",
		"@nobody rpcinfo -d 300000 1",
		"rpcinfo",
		"rpcinfo -p",
		"rpcinfo -s",
		"rpcinfo -l 127.0.0.1 300000 1",
		"rpcinfo -l ::1 300000 1",
		Restart,
		"rpcinfo",
		"rpcinfo -p",
		"rpcinfo -d -T udp6 300000 2",
		"rpcinfo -d 300000 1",
		"tirpcclient pmapunset 300001 2",
		"@nobody tirpcclient unset 300002 1 -",
		"rpcinfo -s",
		"rpcinfo -m",
	)
}

// TestTirpcCalls drives every libtirpc client entry point of spec §6.1.
func TestTirpcCalls(t *testing.T) {
	env, ok := Enter(t)
	if !ok {
		return
	}
	env.Compare(t,
		"tirpcclient set 300000 1 tcp 0.0.0.0.3.232",
		"tirpcclient set 300000 1 udp6 ::.3.232",
		"tirpcclient pmapset 300001 2 udp 1234",
		"tirpcclient getaddr 300000 1 tcp",
		"tirpcclient getaddr 300000 1 udp",
		"tirpcclient getaddr 300000 1 udp6",
		"tirpcclient getaddr 300000 1 tcp6",
		"tirpcclient getaddr 300000 9 tcp",
		"tirpcclient getaddr 300009 1 udp",
		"tirpcclient getaddr 100000 2 udp",
		"tirpcclient getport 300001 2 udp",
		"tirpcclient getport 300001 2 tcp",
		"tirpcclient getport 300001 9 udp",
		"tirpcclient getport 300009 2 udp",
		"tirpcclient pmapdump",
		"tirpcclient dump tcp",
		"tirpcclient dump udp",
		"tirpcclient dump tcp6",
		"tirpcclient dump udp6",
		"tirpcclient gettime",
		"tirpcclient uaddr2taddr udp 127.0.0.1.3.232",
		"tirpcclient uaddr2taddr tcp6 ::1.3.232",
		"tirpcclient uaddr2taddr udp garbage",
		"tirpcclient taddr2uaddr udp 020003e87f0000010000000000000000",
		"tirpcclient taddr2uaddr udp6 0a0003e800000000000000000000000000000000000000010000000000",
		"tirpcclient taddr2uaddr udp 02",
		"tirpcclient unset 300000 1 udp6",
		"tirpcclient unset 300000 1 -",
		"tirpcclient pmapunset 300001 2",
		"rpcinfo",
		"rpcinfo -m",
	)
}

// statdLine matches an rpcinfo (v3 dump) row of rpc.statd's program.
var statdLine = regexp.MustCompile(`^\s+100024\s+1\s+(\S+)\s+(\S+)\s+status\s+(\S+)$`)

// TestStatd runs a real registering daemon: rpc.statd registers 100024 v1
// on udp, tcp, udp6 and tcp6 through the local socket, and unregisters all
// four when stopped.
func TestStatd(t *testing.T) {
	env, ok := Enter(t)
	if !ok {
		return
	}
	statd := nstest.Need(t, "/sbin/rpc.statd", "/usr/sbin/rpc.statd")
	results := map[string]string{}
	env.ForEach(t, func(t *testing.T, impl Impl, d *nstest.Daemon) {
		// statd keeps its monitor list in /var/lib/nfs and runs as its owner.
		nstest.MountTmpfs(t, "/var/lib/nfs")
		for _, dir := range []string{"/var/lib/nfs", "/var/lib/nfs/sm", "/var/lib/nfs/sm.bak"} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := chownUser(dir, "statd"); err != nil {
				t.Fatal(err)
			}
		}
		defer syscall.Unmount("/var/lib/nfs", syscall.MNT_DETACH)

		s := nstest.Start(t, statd, "-F", "-L", "-d")
		var rows []string
		s.WaitUntil(nstest.StartTimeout, "100024 on four netids", func() bool {
			rows = statdRows(env.Run(t, "rpcinfo").Stdout)
			return len(rows) == 4
		})
		results[impl.Name] = strings.Join(rows, "\n")
		t.Logf("%s: statd registered:\n%s", impl.Name, results[impl.Name])
		p := env.Run(t, "rpcinfo -p")
		if n := strings.Count(p.Stdout, " status\n"); n != 2 {
			t.Errorf("rpcinfo -p shows %d status rows, want 2 (udp, tcp):\n%s", n, p)
		}
		if err := s.Stop(syscall.SIGTERM); err != nil {
			t.Errorf("rpc.statd exit: %v", err)
		}
		if rows := statdRows(env.Run(t, "rpcinfo").Stdout); len(rows) != 0 {
			t.Errorf("after rpc.statd stopped, still registered:\n%s", strings.Join(rows, "\n"))
		}
	})
	want := "tcp 103\ntcp6 103\nudp 103\nudp6 103"
	if uid, err := userID("statd"); err == nil {
		want = strings.ReplaceAll(want, "103", uid)
	}
	for name, got := range results {
		if got != want {
			t.Errorf("%s: statd rows (netid owner)\n%s\nwant\n%s", name, got, want)
		}
	}
}

// statdRows returns "netid owner" for each 100024 row, sorted (the ports
// are random).
func statdRows(rpcinfo string) []string {
	var rows []string
	for _, line := range strings.Split(rpcinfo, "\n") {
		if m := statdLine.FindStringSubmatch(line); m != nil {
			rows = append(rows, m[1]+" "+m[3])
		}
	}
	sort.Strings(rows)
	return rows
}

// nullCall is a v2 NULL call (RFC 5531 call header, AUTH_NONE).
func nullCall(xid uint32) []byte {
	var b []byte
	for _, w := range []uint32{
		xid,
		0,      // CALL
		2,      // rpcvers
		100000, // prog
		2,      // vers
		0,      // proc NULL
		0, 0,   // cred AUTH_NONE, length 0
		0, 0, // verf AUTH_NONE, length 0
	} {
		b = binary.BigEndian.AppendUint32(b, w)
	}
	return b
}

// TestUDPReplySource: a datagram sent to another loopback address is
// answered from that address, not from 127.0.0.1 (spec §4.7).
func TestUDPReplySource(t *testing.T) {
	env, ok := Enter(t)
	if !ok {
		return
	}
	env.ForEach(t, func(t *testing.T, impl Impl, d *nstest.Daemon) {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i, dst := range []string{"127.0.0.2", "127.1.2.3", "127.0.0.1"} {
			to := &net.UDPAddr{IP: net.ParseIP(dst), Port: 111}
			xid := uint32(0x5eed0000 + i)
			if _, err := c.WriteToUDP(nullCall(xid), to); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 1500)
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				t.Fatalf("%s: no reply to NULL sent to %s: %v", impl.Name, dst, err)
			}
			if from.String() != to.String() {
				t.Errorf("%s: reply to %s came from %s", impl.Name, to, from)
			}
			// xid, REPLY, MSG_ACCEPTED, verf AUTH_NONE, SUCCESS
			want := binary.BigEndian.AppendUint32(nil, xid)
			want = append(want, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
			if string(buf[:n]) != string(want) {
				t.Errorf("%s: reply % x, want % x", impl.Name, buf[:n], want)
			}
		}
	})
}

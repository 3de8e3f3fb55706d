// rpcinfo -b (rpc_broadcast, spec §6.1) against real responders on real
// broadcast links: ours and Debian's rpcinfo side by side.

package remotetest

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/e2e"
	"github.com/openrpcbind/rpcbind/internal/nstest"
)

// envBcastRpcinfo passes our rpcinfo, built outside the namespaces, to
// the namespace child.
const envBcastRpcinfo = "REMOTETEST_OUR_RPCINFO"

// bcastRunLimit bounds one rpcinfo -b: rpc_broadcast waits 4 s then 8 s
// after its last reply, so a run takes about 12 s here.
const bcastRunLimit = 25 * time.Second

// bcastSlack is how far our run time may stray from the reference's.
const bcastSlack = 1500 * time.Millisecond

// buildOurRpcinfo compiles ./cmd/rpcinfo once, in the parent.
func buildOurRpcinfo(t *testing.T) {
	t.Helper()
	if nstest.Inside() || os.Geteuid() != 0 {
		return
	}
	root, err := e2e.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "rpcinfo-bcast-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "rpcinfo")
	gotool, err := exec.LookPath("go")
	if err != nil {
		gotool = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(gotool, "build", "-o", bin, "./cmd/rpcinfo")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/rpcinfo: %v\n%s", err, out)
	}
	t.Setenv(envBcastRpcinfo, bin)
}

// bcastLink is one remote host on its own link and subnet.
type bcastLink struct {
	name          string // veth base: name0 here, name1 there
	local, remote netip.Prefix
	r             *Remote
}

// setBroadcast gives the local end's address the broadcast address "brd +"
// computes (on = true) or none at all, which is what a plain `ip addr add`
// leaves and what getifaddrs then reports as no ifa_broadaddr.
func (l *bcastLink) setBroadcast(t *testing.T, ip string, on bool) {
	t.Helper()
	dev := l.name + "0"
	for _, c := range brdArgs(l.local, dev, on) {
		if out, err := exec.Command(ip, c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
	out, err := exec.Command(ip, "-o", "-4", "addr", "show", "dev", dev).Output()
	if err != nil {
		t.Fatal(err)
	}
	brd := "brd " + bcastAddr(l.local).String()
	if on != strings.Contains(string(out), brd) {
		t.Fatalf("%s: want broadcast %v (%s): %s", dev, on, brd, out)
	}
	out, err = exec.Command(ip, "-o", "link", "show", "dev", dev).Output()
	if err != nil || !strings.Contains(string(out), "<BROADCAST,") {
		t.Fatalf("%s lacks the BROADCAST flag: %v %s", dev, err, out)
	}
}

// brdArgs re-adds p on dev with or without "brd +" (`ip addr replace`
// leaves the broadcast address as it was).
func brdArgs(p netip.Prefix, dev string, on bool) [][]string {
	add := []string{"addr", "add", p.String(), "dev", dev}
	if on {
		add = append(add, "brd", "+")
	}
	return [][]string{{"addr", "del", p.String(), "dev", dev}, add}
}

func bcastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(a)
}

// startResponder runs an rpcbind with -r in l's namespace, with its own
// mount namespace and an empty /run, and waits for port 111.
func (l *bcastLink) startResponder(t *testing.T, name, bin string) *nstest.Daemon {
	t.Helper()
	unshare := nstest.Need(t, "unshare")
	script := `mount -t tmpfs -o mode=0755 tmpfs /run && mkdir /run/rpcbind /run/lock && chown _rpc /run/rpcbind && exec "$0" -f -w -r`
	d := nstest.StartNamed(t, name, "nsenter", "--net="+l.r.NetNS, "--", unshare, "-m", "sh", "-c", script, bin)
	d.WaitUntil(nstest.StartTimeout, "port 111 at "+l.remote.Addr().String(), func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(l.r.PID) + "/net/udp")
		if err != nil || !bytes.Contains(b, []byte(":006F ")) {
			return false
		}
		return l.r.Do(func() error {
			c, err := net.DialTimeout("tcp", "127.0.0.1:111", time.Second)
			if err == nil {
				c.Close()
			}
			return err
		}) == nil
	})
	return d
}

// bcastCapture records every datagram a silent "remote rpcbind" receives
// on port 111: IPv4 broadcasts and the IPv6 group ff02::202.
type bcastCapture struct {
	mu    sync.Mutex
	pkts  []capPkt
	conns []*net.UDPConn
}

type capPkt struct {
	src netip.AddrPort
	at  time.Time
	msg []byte
}

func newCapture(t *testing.T, l *bcastLink) *bcastCapture {
	t.Helper()
	c := &bcastCapture{}
	if err := l.r.Do(func() error {
		c4, err := net.ListenUDP("udp4", &net.UDPAddr{Port: 111})
		if err != nil {
			return err
		}
		c.conns = append(c.conns, c4)
		ifi, err := net.InterfaceByName(l.name + "1")
		if err != nil {
			return err
		}
		c6, err := net.ListenMulticastUDP("udp6", ifi, &net.UDPAddr{IP: net.ParseIP("ff02::202"), Port: 111})
		if err != nil {
			return err
		}
		c.conns = append(c.conns, c6)
		return nil
	}); err != nil {
		t.Fatalf("capture at %s: %v", l.remote.Addr(), err)
	}
	for _, pc := range c.conns {
		go func() {
			buf := make([]byte, 65536)
			for {
				n, from, err := pc.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				c.mu.Lock()
				c.pkts = append(c.pkts, capPkt{src: from, at: time.Now(), msg: append([]byte(nil), buf[:n]...)})
				c.mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() {
		for _, pc := range c.conns {
			pc.Close()
		}
	})
	return c
}

// take returns what arrived since the last take.
func (c *bcastCapture) take() []capPkt {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pkts
	c.pkts = nil
	return p
}

// patterns describes, per client socket (source address and port), the
// sequence of calls it sent: each call as its bytes without the XID and
// the AUTH_SYS stamp (both differ from run to run), its XID relative to the
// socket's first, and where a new burst starts (a gap over a second) the
// gap in whole seconds. Calls too short to hold a stamp are shown whole.
func patterns(pkts []capPkt) map[netip.AddrPort][]string {
	type st struct {
		xid0 uint32
		last time.Time
	}
	first := map[netip.AddrPort]*st{}
	out := map[netip.AddrPort][]string{}
	for _, p := range pkts {
		if len(p.msg) < 36 {
			out[p.src] = append(out[p.src], "short "+hex.EncodeToString(p.msg))
			continue
		}
		xid := uint32(p.msg[0])<<24 | uint32(p.msg[1])<<16 | uint32(p.msg[2])<<8 | uint32(p.msg[3])
		s := first[p.src]
		if s == nil {
			s = &st{xid0: xid, last: p.at}
			first[p.src] = s
		}
		if gap := p.at.Sub(s.last); gap > time.Second {
			out[p.src] = append(out[p.src], fmt.Sprintf("-- after %ds", int(gap.Round(time.Second)/time.Second)))
		}
		s.last = p.at
		desc := fmt.Sprintf("xid+%d prog %d vers %d proc %d | %s ~stamp~ %s",
			int32(xid-s.xid0), be32(p.msg[12:]), be32(p.msg[16:]), be32(p.msg[20:]),
			hex.EncodeToString(p.msg[4:32]), hex.EncodeToString(p.msg[36:]))
		out[p.src] = append(out[p.src], desc)
	}
	return out
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// callitArgs returns the forwarded program, version and procedure of a
// captured CALLIT (the same call_args in v2 and v3), for grouping.
func callitArgs(p capPkt) string {
	// xid, mtype, rpcvers, prog, vers, proc, cred(flavor, len, body), verf(flavor, len, body), args
	m := p.msg
	if len(m) < 32 {
		return "?"
	}
	off := 32 + int(be32(m[28:]))
	if off+8 > len(m) {
		return "?"
	}
	off += 8 + int(be32(m[off+4:]))
	if off+12 > len(m) {
		return "?"
	}
	return fmt.Sprintf("%d %d %d", be32(m[off:]), be32(m[off+4:]), be32(m[off+8:]))
}

// bcastRun is one rpcinfo invocation.
type bcastRun struct {
	stdout, stderr string
	exit           int // -1: killed at bcastRunLimit
	took           time.Duration
}

func runBcast(bin string, args []string) bcastRun {
	ctx, cancel := context.WithTimeout(context.Background(), bcastRunLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Args[0] = "rpcinfo"
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	start := time.Now()
	err := cmd.Run()
	r := bcastRun{stdout: o.String(), stderr: e.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.exit = -1
	case errors.As(err, &ee):
		r.exit = ee.ExitCode()
	case err != nil:
		r.exit = -2
		r.stderr += "(test: " + err.Error() + ")"
	}
	return r
}

func sortedLines(s string) string {
	l := strings.SplitAfter(s, "\n")
	sort.Strings(l)
	return strings.Join(l, "")
}

// runPhase runs every command with the reference rpcinfo and ours, all at
// once (each rpc_broadcast has its own socket and XIDs), and compares each
// pair: exit status, stderr, stdout after sorting its lines (responders
// answer in any order) and run time.
func runPhase(t *testing.T, ref, ours string, cmds []string) map[string][2]bcastRun {
	t.Helper()
	res := map[string][2]bcastRun{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range cmds {
		for i, bin := range []string{ref, ours} {
			wg.Go(func() {
				r := runBcast(bin, strings.Fields(c))
				mu.Lock()
				x := res[c]
				x[i] = r
				res[c] = x
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	for _, c := range cmds {
		r, o := res[c][0], res[c][1]
		t.Logf("rpcinfo %s: reference exit %d in %v, ours exit %d in %v\n--- reference\n%s%s--- ours\n%s%s",
			c, r.exit, r.took.Round(time.Millisecond), o.exit, o.took.Round(time.Millisecond), r.stdout, r.stderr, o.stdout, o.stderr)
		if r.exit == -1 {
			t.Errorf("rpcinfo %s: the reference ran over %v", c, bcastRunLimit)
		}
		if o.exit != r.exit || o.stderr != r.stderr || sortedLines(o.stdout) != sortedLines(r.stdout) {
			t.Errorf("rpcinfo %s: ours differs from the reference:\n--- reference exit %d\n%s%s--- ours exit %d\n%s%s",
				c, r.exit, sortedLines(r.stdout), r.stderr, o.exit, sortedLines(o.stdout), o.stderr)
		}
		if d := o.took - r.took; d > bcastSlack || d < -bcastSlack {
			t.Errorf("rpcinfo %s: ours took %v, the reference %v (want within %v)", c, o.took, r.took, bcastSlack)
		}
	}
	return res
}

// checkMix groups the captured calls by client socket and demands that
// every socket that asked for the same forwarded call sent the same
// sequence (so ours sent what the reference sent: same versions, order,
// XID steps, credential and rounds), and that there are `want` such
// sockets per forwarded call and address family.
func checkMix(t *testing.T, what string, pkts []capPkt, want int) {
	t.Helper()
	pat := patterns(pkts)
	key := map[netip.AddrPort]string{}
	for _, p := range pkts {
		if _, ok := key[p.src]; !ok {
			fam := "IPv4"
			if !p.src.Addr().Is4() {
				fam = "IPv6"
			}
			key[p.src] = fam + " CALLIT of " + callitArgs(p)
		}
	}
	groups := map[string][]netip.AddrPort{}
	for src, k := range key {
		groups[k] = append(groups[k], src)
	}
	var names []string
	for k := range groups {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		srcs := groups[k]
		seqs := map[string][]netip.AddrPort{}
		for _, s := range srcs {
			seq := strings.Join(pat[s], "\n")
			seqs[seq] = append(seqs[seq], s)
		}
		var b strings.Builder
		for seq, ss := range seqs {
			fmt.Fprintf(&b, "from %v:\n%s\n", ss, seq)
		}
		t.Logf("%s: %s, %d sockets:\n%s", what, k, len(srcs), b.String())
		if len(seqs) != 1 {
			t.Errorf("%s: %s: the clients sent %d different sequences (want one, the reference's)", what, k, len(seqs))
		}
		if len(srcs) != want {
			t.Errorf("%s: %s from %d client sockets, want %d", what, k, len(srcs), want)
		}
	}
}

// TestBroadcast: the local host has three broadcast links (veth, brd set),
// each to a remote host on its own subnet: 192.0.2.2 runs Debian's rpcbind
// -r, 198.51.100.2 runs ours with -r, 203.0.113.2 (which also has
// 2001:db8::2 and ff02::202) only records what arrives on port 111.
// Phase 1 runs ours and the reference rpcinfo -b side by side for several
// calls and compares output (sorted), exit status, run time and the calls
// each client socket sent. Phase 2 removes the broadcast addresses (plain
// `ip addr add`): libtirpc then finds no IPv4 broadcast interface and only
// multicasts v3 CALLIT to ff02::202, and so must ours.
func TestBroadcast(t *testing.T) {
	buildOurRpcinfo(t)
	env, ok := e2e.Enter(t)
	if !ok {
		return
	}
	refInfo := nstest.Need(t, "/usr/sbin/rpcinfo", "/sbin/rpcinfo")
	ourInfo := os.Getenv(envBcastRpcinfo)
	if ourInfo == "" {
		t.Fatal("our rpcinfo was not built")
	}
	ip := nstest.Need(t, "ip", "/usr/sbin/ip", "/sbin/ip")
	links := []*bcastLink{
		{name: "ra", local: netip.MustParsePrefix("192.0.2.1/24"), remote: netip.MustParsePrefix("192.0.2.2/24")},
		{name: "rb", local: netip.MustParsePrefix("198.51.100.1/24"), remote: netip.MustParsePrefix("198.51.100.2/24")},
		{name: "rc", local: netip.MustParsePrefix("203.0.113.1/24"), remote: netip.MustParsePrefix("203.0.113.2/24")},
	}
	for i, l := range links {
		opt := Options{Name: l.name, Local: l.local, Remote: l.remote}
		if i == 2 {
			opt.ExtraLocal, opt.ExtraRemote = []netip.Prefix{v6Local}, []netip.Prefix{v6Remote}
		}
		l.r = New(t, opt)
		l.setBroadcast(t, ip, true)
		// The remote end gets its broadcast address too, so that its
		// kernel takes x.x.x.255 as a broadcast for it.
		for _, c := range brdArgs(l.remote, l.name+"1", true) {
			if out, err := l.r.Command(ip, c...).CombinedOutput(); err != nil {
				t.Fatalf("remote ip %s: %v\n%s", strings.Join(c, " "), err, out)
			}
		}
	}
	refD := links[0].startResponder(t, "reference@192.0.2.2", nstest.ReferenceRpcbind(t))
	ourD := links[1].startResponder(t, "ours@198.51.100.2", ours(t, env).Path)
	capt := newCapture(t, links[2])
	waitNoTentative(t, ip)

	// Phase 1: three broadcast links.
	cmds := []string{
		"-b 100000 2",
		"-b 100000 3",
		"-b -T udp 100000 4",
		"-b -T udp6 nfs 3", // 100003 is denied by check_callit: AUTH_TOOWEAK replies, no line
	}
	res := runPhase(t, refInfo, ourInfo, cmds)
	for _, c := range cmds[:3] {
		for i, who := range []string{"reference", "ours"} {
			out := res[c][i].stdout
			if n := strings.Count(out, "192.0.2.2.0.111\t"); n != 4 {
				t.Errorf("%s rpcinfo %s: %d lines for the reference rpcbind at 192.0.2.2, want 4 (v3 and v2 CALLIT, two rounds)", who, c, n)
			}
			// Our rpcbind relays from the interface address, as the
			// reference: a broadcast destination cannot be a source.
			if n := strings.Count(out, "198.51.100.2.0.111\t"); n != 4 {
				t.Errorf("%s rpcinfo %s: %d lines for our rpcbind at 198.51.100.2, want 4", who, c, n)
			}
		}
	}
	if out := strings.Join([]string{res[cmds[3]][0].stdout, res[cmds[3]][1].stdout}, ""); out != "" {
		t.Errorf("a denied CALLIT produced lines:\n%s", out)
	}
	checkMix(t, "phase 1", capt.take(), 2)
	for _, d := range []*nstest.Daemon{refD, ourD} {
		if d.Exited() {
			t.Errorf("%s exited during the broadcasts: %s", d.Name, d.Output())
		}
	}

	// Phase 2: no IPv4 broadcast address anywhere; IPv6 multicast only.
	for _, l := range links {
		l.setBroadcast(t, ip, false)
	}
	waitNoTentative(t, ip)
	cmds = []string{"-b 100000 2", "-b -T udp 100000 3"}
	res = runPhase(t, refInfo, ourInfo, cmds)
	for _, c := range cmds {
		if r := res[c][0]; r.stdout != "" || r.exit != 0 {
			t.Errorf("reference rpcinfo %s without broadcast addresses: exit %d, output %q (want silence and exit 0)", c, r.exit, r.stdout)
		}
	}
	pkts := capt.take()
	for _, p := range pkts {
		if p.src.Addr().Is4() {
			t.Errorf("phase 2: an IPv4 datagram from %v with no broadcast address configured", p.src)
		}
	}
	checkMix(t, "phase 2", pkts, 2)
}

// waitNoTentative waits until no local IPv6 address is still in duplicate
// address detection: a tentative address is listed by getifaddrs but
// cannot send yet, which would make the first round differ by chance.
func waitNoTentative(t *testing.T, ip string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := exec.Command(ip, "-6", "addr", "show", "tentative").Output()
		if err == nil && len(bytes.TrimSpace(out)) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("IPv6 addresses still tentative after 5s:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

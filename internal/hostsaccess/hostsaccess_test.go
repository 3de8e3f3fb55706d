package hostsaccess

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// files writes allow and deny into a temp dir ("-" means: no such file)
// and returns a Checker over them and the messages it logged.
func files(t testing.TB, allow, deny string) (*Checker, *logbook) {
	t.Helper()
	dir := t.TempDir()
	ap, dp := filepath.Join(dir, "hosts.allow"), filepath.Join(dir, "hosts.deny")
	for p, s := range map[string]string{ap: allow, dp: deny} {
		if s == "-" {
			continue
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lb := &logbook{}
	return New(ap, dp, lb.add), lb
}

type logbook struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logbook) add(s string) { l.mu.Lock(); l.msgs = append(l.msgs, s); l.mu.Unlock() }
func (l *logbook) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.msgs, "\n")
}

// TestMatch: libwrap semantics, each row measured against libwrap0
// 7.6.q-32 with testdata/libwrap_oracle.c unless marked "decision".
func TestMatch(t *testing.T) {
	type want map[string]bool // address -> allowed
	for _, tc := range []struct {
		name, allow, deny string
		want              want
	}{
		{"no files", "-", "-", want{"192.0.2.2": true, "::1": true}},
		{"empty files", "", "", want{"192.0.2.2": true}},
		// spec §3.1 [EMP]: the rule the reference was measured with.
		{"deny all except loopback", "", "rpcbind: ALL EXCEPT 127.0.0.1\n",
			want{"127.0.0.1": true, "::ffff:127.0.0.1": true, "192.0.2.2": false, "::1": false, "127.0.0.2": false}},
		// hosts_access(5) MOSTLY CLOSED, numeric form.
		{"mostly closed", "ALL: 192.0.2.0/24 EXCEPT 192.0.2.66\n", "ALL: ALL\n",
			want{"192.0.2.2": true, "192.0.2.66": false, "198.51.100.1": false}},
		// hosts_access(5): `131.155.` matches 131.155.x.x.
		{"prefix", "", "rpcbind: 131.155.\n",
			want{"131.155.72.1": false, "131.156.0.1": true, "::ffff:131.155.0.1": false}},
		{"prefix is textual", "", "rpcbind: 192.0.2.\n", want{"192.0.22.1": true, "192.0.2.9": false}},
		// hosts_access(5): 131.155.72.0/255.255.254.0 covers .72.0-.73.255.
		{"net/mask", "", "rpcbind: 131.155.72.0/255.255.254.0\n",
			want{"131.155.72.0": false, "131.155.73.255": false, "131.155.74.0": true, "131.155.71.255": true}},
		{"net/len", "", "rpcbind: 192.0.2.0/24\n", want{"192.0.2.200": false, "192.0.3.1": true, "2001:db8::1": true}},
		{"net with host bits never matches", "", "rpcbind: 192.0.2.5/24\n", want{"192.0.2.5": true}},
		{"mask 255.255.255.255 is invalid", "", "rpcbind: 192.0.2.2/255.255.255.255\n", want{"192.0.2.2": true}},
		{"/32", "", "rpcbind: 192.0.2.2/32\n", want{"192.0.2.2": false, "192.0.2.3": true}},
		{"/0 is invalid for IPv4", "", "rpcbind: 0.0.0.0/0\n", want{"192.0.2.2": true}},
		{"non-contiguous mask", "", "rpcbind: 192.0.2.0/255.0.255.0\n", want{"192.9.2.3": false, "192.9.3.3": true}},
		{"len read like atoi", "", "rpcbind: 192.0.2.0/24x\n", want{"192.0.2.2": false}},
		// hosts_access(5): [3ffe:505:2:1::]/64.
		{"[v6]/len", "", "rpcbind: [3ffe:505:2:1::]/64\n",
			want{"3ffe:505:2:1::": false, "3ffe:505:2:1:ffff:ffff:ffff:ffff": false, "3ffe:505:2:2::": true, "192.0.2.2": true}},
		{"[v6]/len masks the pattern too", "", "rpcbind: [2001:db8::1]/64\n", want{"2001:db8::2": false}},
		{"[v6]/garbage is /0", "", "rpcbind: [2001:db8::]/ab\n", want{"2001:db9::2": false, "192.0.2.2": true}},
		{"[v6]", "", "rpcbind: [2001:db8::1]\n", want{"2001:db8:0::1": false, "2001:db8::2": true}},
		{"[v4] never matches", "", "rpcbind: [192.0.2.2] [::ffff:192.0.2.2]\n", want{"192.0.2.2": true, "::ffff:192.0.2.2": true}},
		{"mapped caller is IPv4", "", "rpcbind: 192.0.2.0/24\n", want{"::ffff:192.0.2.2": false}},
		{"wildcards", "", "rpcbind: 192.0.2.? 2001:db8*\n",
			want{"192.0.2.2": false, "192.0.2.22": true}},
		{"star", "", "rpcbind: *\n", want{"192.0.2.2": false, "2001:db8::1": false}},
		{"EXCEPT nests right", "", "rpcbind: ALL EXCEPT 192.0.2.0/24 EXCEPT 192.0.2.2\n",
			want{"192.0.2.2": false, "192.0.2.3": true, "10.0.0.1": false}},
		{"leading EXCEPT", "", "rpcbind: EXCEPT 192.0.2.2\n", want{"192.0.2.2": true}},
		{"trailing EXCEPT", "", "rpcbind: ALL EXCEPT\n", want{"192.0.2.2": false}},
		{"case", "", "RPCBIND: all except 127.0.0.1\n", want{"192.0.2.2": false, "127.0.0.1": true}},
		{"commas", "", "rpcbind,portmap:192.0.2.3,192.0.2.2\n", want{"192.0.2.2": false}},
		{"other daemon", "", "portmap: ALL\nsshd: ALL\n", want{"192.0.2.2": true}},
		{"daemon ALL", "", "ALL: ALL\n", want{"192.0.2.2": false}},
		{"daemon KNOWN", "", "KNOWN: ALL\n", want{"192.0.2.2": false}},
		{"daemon glob", "", "rpc*: ALL\n", want{"192.0.2.2": false}},
		{"daemon EXCEPT", "", "ALL EXCEPT rpcbind: ALL\nALL EXCEPT portmap: 10.0.0.1\n", want{"192.0.2.2": true, "10.0.0.1": false}},
		{"daemon@addr never", "", "rpcbind@192.0.2.1: ALL\n", want{"192.0.2.2": true}},
		{"daemon@ALL", "", "rpcbind@ALL: ALL\n", want{"192.0.2.2": false}},
		{"daemon@UNKNOWN", "", "rpcbind@UNKNOWN: ALL\n", want{"192.0.2.2": false}},
		{"user@host", "", "rpcbind: root@ALL KNOWN@ALL\nrpcbind: UNKNOWN@192.0.2.2 ALL@192.0.2.3\n",
			want{"192.0.2.1": true, "192.0.2.2": false, "192.0.2.3": false}},
		{"names never match", "", "rpcbind: host.example.com .example.com @ng /etc/x.list myhost\n", want{"192.0.2.2": true}},
		// decision: LOCAL is loopback (Debian's /etc/hosts names it "localhost").
		{"LOCAL (decision)", "rpcbind: LOCAL\n", "rpcbind: ALL\n",
			want{"127.0.0.1": true, "127.0.1.1": true, "::1": true, "192.0.2.2": false}},
		// hosts_options(5): allow/deny keep all rules in one file.
		{"options in one file", "rpcbind: 192.0.2.0/24: ALLOW\nrpcbind: ALL: DENY\n", "",
			want{"192.0.2.2": true, "10.0.0.1": false}},
		{"allow in hosts.deny", "", "rpcbind: 192.0.2.2: allow\nrpcbind: ALL\n", want{"192.0.2.2": true, "192.0.2.3": false}},
		{"deny in hosts.allow", "rpcbind: 192.0.2.2: deny\n", "", want{"192.0.2.2": false, "192.0.2.3": true}},
		{"harmless option", "rpcbind: ALL: severity auth.info\n", "rpcbind: ALL\n", want{"192.0.2.2": true}},
		{"bad option denies", "rpcbind: ALL: bogus\n", "", want{"192.0.2.2": false}},
		{"empty option denies", "rpcbind: ALL:\n", "", want{"192.0.2.2": false}},
		{"allow not last denies", "rpcbind: ALL: allow: severity info\n", "", want{"192.0.2.2": false}},
		{"allow with a value denies", "rpcbind: ALL: allow foo\n", "", want{"192.0.2.2": false}},
		{"allow=", "rpcbind: ALL: allow=\n", "rpcbind: ALL\n", want{"192.0.2.2": true}},
		{"bad severity denies", "rpcbind: ALL: severity bogus.level\n", "", want{"192.0.2.2": false}},
		{"spawn is not run", "rpcbind: ALL: spawn /bin/false\n", "rpcbind: ALL\n", want{"192.0.2.2": true}},
		{"spawn without command denies", "rpcbind: ALL: spawn\n", "", want{"192.0.2.2": false}},
		{"escaped colon", "rpcbind: ALL: spawn echo a\\: b\n", "rpcbind: ALL\n", want{"192.0.2.2": true}},
		{"brackets keep colons", "rpcbind: [2001:db8::1]: deny\n", "", want{"2001:db8::1": false, "2001:db8::2": true}},
		{"options only when matched", "rpcbind: 10.0.0.1: bogus\n", "", want{"192.0.2.2": true}},
		// File syntax.
		{"comment in column 1", "", "#rpcbind: ALL\n", want{"192.0.2.2": true}},
		{"indented # is a token", "", "  # rpcbind: ALL\n", want{"192.0.2.2": false}},
		{"# mid-line is a token", "", "rpcbind: # 192.0.2.2\n", want{"192.0.2.2": false}},
		{"continuation", "", "rpcbind: 192.0.2.3 \\\n 192.0.2.2\n", want{"192.0.2.2": false}},
		{"continuation joins", "", "rpcbind: 192.0.2.3\\\n192.0.2.2\n", want{"192.0.2.2": true}},
		{"continuation before colon", "", "rpcbind \\\n: ALL\n", want{"192.0.2.2": false}},
		{"CRLF", "", "rpcbind: ALL\r\n", want{"192.0.2.2": false}},
		{"no final newline", "", "rpcbind: ALL", want{"192.0.2.2": false}},
		{"missing colon", "", "rpcbind ALL\n", want{"192.0.2.2": true}},
		{"empty lists", "", ": ALL\nrpcbind:\n", want{"192.0.2.2": true}},
		{"first match wins", "rpcbind: 192.0.2.2\nrpcbind: ALL: deny\n", "", want{"192.0.2.2": true, "192.0.2.3": false}},
		{"long line skipped", "", "rpcbind: " + strings.Repeat("x ", 1100) + "ALL\n", want{"192.0.2.2": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, lb := files(t, tc.allow, tc.deny)
			for a, w := range tc.want {
				if got := c.Allowed(netip.MustParseAddr(a)); got != w {
					t.Errorf("Allowed(%s) = %v, want %v\nallow:\n%s\ndeny:\n%s\nlog:\n%s", a, got, w, tc.allow, tc.deny, lb)
				}
			}
		})
	}
}

// TestUnsupportedLoggedOnce: names and netgroups are reported once, however
// often the file is re-read.
func TestUnsupportedLoggedOnce(t *testing.T) {
	c, lb := files(t, "rpcbind: host.example.com @ng\n", "sshd: other.example.com\n")
	c.Reload()
	c.Reload()
	log := lb.String()
	for _, s := range []string{"host.example.com: unsupported (host name)", "@ng: unsupported (NIS netgroup)"} {
		if strings.Count(log, s) != 1 {
			t.Errorf("want %q logged once, log:\n%s", s, log)
		}
	}
	if strings.Contains(log, "other.example.com") {
		t.Errorf("a rule for another daemon was reported:\n%s", log)
	}
}

// TestUnreadable: libwrap ignores an unreadable hosts.allow and denies
// everyone (not granted) when hosts.deny is unreadable. A directory reads
// as an empty file.
func TestUnreadable(t *testing.T) {
	c, lb := files(t, "rpcbind: 192.0.2.2\n", "rpcbind: 192.0.2.3\n")
	restore := unreadable(t, c.denyPath)
	c.Reload()
	if !c.Allowed(netip.MustParseAddr("192.0.2.2")) || c.Allowed(netip.MustParseAddr("192.0.2.4")) {
		t.Errorf("unreadable hosts.deny: want only hosts.allow's clients; log:\n%s", lb)
	}
	restore()
	unreadable(t, c.allowPath)
	c.Reload()
	if !c.Allowed(netip.MustParseAddr("192.0.2.2")) || c.Allowed(netip.MustParseAddr("192.0.2.3")) {
		t.Errorf("unreadable hosts.allow: want it ignored; log:\n%s", lb)
	}
}

// unreadable makes path fail to open, with something other than "no such
// file", and returns what puts it back. A mode-000 file stops every user
// but root (the daemon reads as _rpc); root gets a symlink to itself
// (ELOOP), so that the test runs under `make test` as well.
func unreadable(t *testing.T, path string) (restore func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(path, 0); err != nil {
			t.Fatal(err)
		}
		return func() { os.Chmod(path, 0o644) }
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Base(path), path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Open(path); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("open of the symlink loop: %v, want an error other than not-exist", err)
	}
	return func() {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDirectoryIsEmpty(t *testing.T) {
	dir := t.TempDir()
	c := New(dir, dir, nil)
	if !c.Allowed(netip.MustParseAddr("192.0.2.2")) {
		t.Error("directories as files: want allowed (libwrap reads no line)")
	}
}

// TestReloadOnEdit: an edit is seen at the first request after the check
// interval, with no Reload call; without the interval passing, nothing is
// stat'ed and the old rules stay.
func TestReloadOnEdit(t *testing.T) {
	c, _ := files(t, "", "")
	armed := 0
	c.arm = func() { armed++ }
	tick := func() { c.due.Store(true) } // the timer firing
	a := netip.MustParseAddr("192.0.2.2")
	if !c.Allowed(a) {
		t.Fatal("empty files deny")
	}
	if err := os.WriteFile(c.denyPath, []byte("rpcbind: 192.0.2.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !c.Allowed(a) {
		t.Fatal("the edit applied before the check interval: files are stat'ed per request")
	}
	tick()
	if c.Allowed(a) {
		t.Fatal("the edit of hosts.deny did not apply after the check interval")
	}
	// Same size, new content: the mtime/ctime decide.
	if err := os.WriteFile(c.denyPath, []byte("rpcbind: 192.0.2.3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tick()
	if !c.Allowed(a) {
		t.Fatal("a same-size edit was not seen")
	}
	// Replace by rename (editors, config management): a new inode.
	tmp := c.denyPath + ".new"
	os.WriteFile(tmp, []byte("rpcbind: ALL\n"), 0o644)
	if err := os.Rename(tmp, c.denyPath); err != nil {
		t.Fatal(err)
	}
	tick()
	if c.Allowed(a) {
		t.Fatal("a rename over hosts.deny was not seen")
	}
	// Removal: no file, no rules.
	os.Remove(c.denyPath)
	tick()
	if !c.Allowed(a) {
		t.Fatal("removing hosts.deny was not seen")
	}
	// hosts.allow appearing.
	os.WriteFile(c.denyPath, []byte("rpcbind: ALL\n"), 0o644)
	os.WriteFile(c.allowPath, []byte("rpcbind: 192.0.2.2\n"), 0o644)
	tick()
	if !c.Allowed(a) || c.Allowed(netip.MustParseAddr("192.0.2.3")) {
		t.Fatal("a new hosts.allow was not seen")
	}
}

// TestNoParsePerRequest: without a change, the check does not re-parse.
func TestNoParsePerRequest(t *testing.T) {
	c, _ := files(t, "", "rpcbind: 192.0.2.2\n")
	armed := 0
	c.arm = func() { armed++ }
	c.Reload()
	s := c.cur.Load()
	for i := 0; i < 5; i++ {
		c.due.Store(true)
		c.Allowed(netip.MustParseAddr("192.0.2.2"))
		c.Allowed(netip.MustParseAddr("192.0.2.2"))
	}
	if c.cur.Load() != s {
		t.Fatal("unchanged files were re-parsed")
	}
	if armed != 6 {
		t.Fatalf("timer armed %d times, want 6 (one per check)", armed)
	}
}

// TestAllowedAllocs guards the request path: no allocation, with or
// without a wildcard pattern.
func TestAllowedAllocs(t *testing.T) {
	for _, deny := range []string{
		"rpcbind: ALL EXCEPT 127.0.0.1 [::1] 192.0.2.0/24\n",
		"rpcbind: 192.0.2.* [2001:db8::]/32\n",
	} {
		c, _ := files(t, "rpcbind: 10.0.0.1\n", deny)
		c.arm = func() {}
		c.Reload()
		addrs := []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("::ffff:10.0.0.1")}
		n := testing.AllocsPerRun(100, func() {
			for _, a := range addrs {
				c.Allowed(a)
			}
		})
		if n != 0 {
			t.Errorf("deny %q: %v allocations per request", deny, n)
		}
	}
}

// TestConcurrentReload: requests race reloads (run with -race).
func TestConcurrentReload(t *testing.T) {
	c, _ := files(t, "", "rpcbind: 192.0.2.2\n")
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				c.Allowed(netip.MustParseAddr("192.0.2.2"))
			}
		}()
	}
	for i := 0; i < 20; i++ {
		c.Reload()
	}
	wg.Wait()
}

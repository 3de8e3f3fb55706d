package hostsaccess

import (
	"github.com/openrpcbind/rpcbind/internal/testenv"

	"bufio"
	"bytes"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// libwrapSO is Debian's libwrap0 (bookworm, merged /usr).
var libwrapSO = []string{"/usr/lib/x86_64-linux-gnu/libwrap.so.0", "/lib/x86_64-linux-gnu/libwrap.so.0"}

// buildOracle compiles testdata/libwrap_oracle.c against the installed
// libwrap; the test fails without gcc or libwrap0 (is skipped in a reduced
// run, internal/testenv).
func buildOracle(t *testing.T) string {
	t.Helper()
	gcc := testenv.Tool(t, "gcc")
	so := testenv.File(t, "libwrap0", libwrapSO...)
	out := filepath.Join(t.TempDir(), "libwrap_oracle")
	if b, err := exec.Command(gcc, "-Wall", "-o", out, "testdata/libwrap_oracle.c", so).CombinedOutput(); err != nil {
		t.Fatalf("build oracle: %v\n%s", err, b)
	}
	return out
}

// oracleAddrs are the clients every generated pair of files is asked about.
var oracleAddrs = []string{
	"192.0.2.2", "192.0.2.3", "192.0.2.22", "192.0.3.2", "10.0.0.1", "127.0.0.1",
	"127.0.0.2", "0.0.0.0", "255.255.255.255", "::1", "2001:db8::1", "2001:db8:1::1",
	"2001:db9::1", "fe80::1", "::ffff:192.0.2.2",
}

// Vocabularies. Left out on purpose, because libwrap given the name
// "unknown" and our decisions differ by design: LOCAL (decision: loopback),
// UNKNOWN and PARANOID as client patterns (name resolution), wildcards that
// could match the name "unknown", and options that would act in the oracle
// (twist, user, group, banners, setenv, aclexec).
var (
	daemonToks = []string{"rpcbind", "RPCBIND", "ALL", "portmap", "sshd", "rpc*", "rpcbind?", "KNOWN",
		"rpcbind@ALL", "rpcbind@192.0.2.1", "rpcbind@UNKNOWN", "rpcbind@unk*", "rpcbind@KNOWN",
		"EXCEPT", "EXCEPT", ".bind", "rpc."}
	clientToks = []string{"ALL", "192.0.2.2", "192.0.2.3", "192.0.2.0/24", "192.0.2.0/255.255.255.0",
		"192.0.2.5/24", "192.0.2.2/255.255.255.255", "192.0.2.2/32", "0.0.0.0/0", "192.0.2.0/0",
		"192.0.2.0/33", "192.0.2.0/24x", "192.0.2.0/x", "192.0.2/24", "192.0.2.", "192.0.", "192.",
		"10.", "1.", "127.0.0.1", "127.", "[::1]", "[2001:db8::1]", "[2001:db8::]/32",
		"[2001:db8::1]/64", "[::]/0", "[2001:db8::]/ab", "[2001:db8::]/129", "[192.0.2.2]",
		"[::ffff:192.0.2.2]", "[::ffff:192.0.2.0]/120", "192.0.2.*", "192.0.2.?", "*.2", "1*",
		"192.0.2.02", "192.0.2.2.", "1.2.3.4.5", "host.example.com", ".example.com", "@netgroup",
		"KNOWN", "EXCEPT", "EXCEPT", "ALL@192.0.2.2", "UNKNOWN@192.0.2.0/24", "KNOWN@ALL",
		"root@ALL", "255.255.255.255", "0.0.0.0", "10.0.0.0/255.0.0.0", "192.0.2.0/255.0.255.0"}
	optionToks = []string{"allow", "deny", "ALLOW", "allow=", "deny foo", "severity auth.info",
		"severity bogus", "severity", "spawn /bin/true", "spawn", "bogus", "", " ", "keepalive",
		"keepalive 1", "nice", "nice 5", "rfc931", "linger 5", "linger", "umask 022", "umask 9"}
)

func genFile(r *rand.Rand) string {
	var b strings.Builder
	for n := r.IntN(4); n > 0; n-- {
		pick := func(v []string, max int) string {
			k := 1 + r.IntN(max)
			s := make([]string, k)
			for i := range s {
				s[i] = v[r.IntN(len(v))]
			}
			sep := []string{" ", ", ", ","}[r.IntN(3)]
			return strings.Join(s, sep)
		}
		b.WriteString(pick(daemonToks, 3) + ": " + pick(clientToks, 4))
		if r.IntN(3) == 0 {
			k := 1 + r.IntN(2)
			for i := 0; i < k; i++ {
				b.WriteString(": " + optionToks[r.IntN(len(optionToks))])
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestLibwrapOracle compares Allowed with Debian's libwrap on generated
// hosts.allow/hosts.deny pairs, for every address in oracleAddrs.
func TestLibwrapOracle(t *testing.T) {
	oracle := buildOracle(t)
	n := 400
	if testing.Short() {
		n = 50
	}
	r := rand.New(rand.NewPCG(6, 2026))
	dir := t.TempDir()
	ap, dp := filepath.Join(dir, "allow"), filepath.Join(dir, "deny")
	fails, denied, total := 0, 0, 0
	for i := 0; i < n && fails < 10; i++ {
		allow, deny := genFile(r), genFile(r)
		os.WriteFile(ap, []byte(allow), 0o644)
		os.WriteFile(dp, []byte(deny), 0o644)
		out, err := exec.Command(oracle, append([]string{ap, dp}, oracleAddrs...)...).Output()
		if err != nil {
			t.Fatalf("oracle: %v", err)
		}
		c := New(ap, dp, nil)
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 2 {
				continue
			}
			want := f[1] == "1"
			total++
			if !want {
				denied++
			}
			if got := c.Allowed(netip.MustParseAddr(f[0])); got != want {
				fails++
				t.Errorf("%s: ours %v, libwrap %v\nhosts.allow:\n%shosts.deny:\n%s", f[0], got, want, allow, deny)
			}
		}
	}
	t.Logf("%d decisions compared, %d denials", total, denied)
	if total < n*len(oracleAddrs) || denied < total/10 {
		t.Fatalf("the generated files do not exercise the matcher: %d decisions, %d denials", total, denied)
	}
}

package hostsaccess

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzParse: any file content parses without panicking, every message is
// one line, and matching any address against the result is total.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"rpcbind: ALL EXCEPT 127.0.0.1\n",
		"rpcbind: 192.0.2.0/24 [2001:db8::]/32 10. : allow\n",
		"ALL EXCEPT portmap: ALL EXCEPT 192.0.2.0/255.255.255.0 EXCEPT 192.0.2.2: spawn echo\\: x: deny\n",
		"# c\n  # x: y\nrpcbind \\\n: ALL\r\n",
		"rpcbind@ALL, rpc*: UNKNOWN@[::1] *.2 192.0.2.? .example.com @ng /f LOCAL KNOWN\n",
		"rpcbind: [2001:db8::]/ab: severity auth.info: allow\n",
		"rpcbind: [[::]]]: [:\n",
		benchAllow + benchDeny,
	} {
		f.Add([]byte(s))
	}
	addrs := []netip.Addr{
		netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("127.0.0.1"),
		netip.MustParseAddr("::1"), netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("::ffff:192.0.2.2"), netip.MustParseAddr("fe80::1%eth0"),
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		note := func(s string) {
			if strings.ContainsRune(s, '\n') && !strings.Contains(string(data), "\n") {
				t.Errorf("multi-line message from single-line input: %q", s)
			}
		}
		rules := parseFile("f", data, note)
		for _, r := range rules {
			for _, a := range addrs {
				r.clients.match(a.Unmap().WithZone(""), a.Unmap().WithZone("").AppendTo(nil))
			}
		}
	})
}

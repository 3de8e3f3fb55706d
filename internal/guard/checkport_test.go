package guard

import (
	"strings"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
	"github.com/openrpcbind/rpcbind/xdr"
)

// TestCheckPortAsServed (issue 11 item 4): CHECK_PORT compares the port a
// client will derive from the entry as the table serves it, not the value
// sent. fee1c75 compared the 32-bit v2 port and rpcbind's p1*256+p2 before
// truncation, so 65536+111 and "0.0.0.0.256.22" were accepted from an
// unprivileged caller and then served as 111 and 22.
func TestCheckPortAsServed(t *testing.T) {
	g, tab := setup(Config{CheckPort: true})
	u := local(1000, 0)
	v3 := func(xid, prog uint32, netid, uaddr string) []byte {
		return call(xid, 3, uint32(pmap.RPCBProcSet), pmap.AppendRPCB(nil, prog, 1, netid, uaddr, ""))
	}
	v2 := func(xid, prog, prot, port uint32) []byte {
		m := pmap.Mapping{Prog: prog, Vers: 1, Prot: prot, Port: port}
		return call(xid, 2, uint32(pmap.PmapProcSet), m.AppendXDR(nil))
	}
	const tcp, udpP = pmap.IPProtoTCP, pmap.IPProtoUDP
	cases := []struct {
		name string
		req  []byte
		c    *access.Caller
		want string
	}{
		// v2: the table keeps the port's low 16 bits.
		{"v2 65536+111 is served as 111", v2(1, 310001, tcp, 65536+111), u, "FALSE"},
		{"v2 65536+2049 is served as 2049, the NFS port (portmap 6.0: reserved)", v2(2, 310002, udpP, 65536+2049), u, "FALSE"},
		{"v2 2049, the NFS port", v2(33, 310033, udpP, 2049), u, "FALSE"},
		{"v2 2048", v2(34, 310034, udpP, 2048), u, "TRUE"},
		{"v2 65536+2050 is served as 2050", v2(35, 310035, tcp, 65536+2050), u, "TRUE"},
		{"v2 131072+22 is served as 22", v2(3, 310003, udpP, 2*65536+22), u, "FALSE"},
		{"v2 65536+1023 is served as 1023", v2(4, 310004, tcp, 65536+1023), u, "FALSE"},
		{"v2 65536 is served as 0: no port, as port 0", v2(5, 310005, tcp, 65536), u, "TRUE"},
		{"v2 0xffffffff is served as 65535", v2(6, 310006, tcp, 0xffffffff), u, "TRUE"},
		{"v2 1024", v2(7, 310007, tcp, 1024), u, "TRUE"},
		// v3/v4 uaddrs: rpcbind's p1*256+p2 (v2 view) and libtirpc's
		// p1<<8|p2, both in 16 bits, atoi-lenient.
		{"udp 0.0.0.0.256.22: 65558, both readers 22", v3(10, 310010, "udp", "0.0.0.0.256.22"), u, "FALSE"},
		{"tcp 0.0.0.0.0.65558: p2 overflows into 22", v3(11, 310011, "tcp", "0.0.0.0.0.65558"), u, "FALSE"},
		{"tcp6 ::1.-256.22: -65514, both readers 22", v3(12, 310012, "tcp6", "::1.-256.22"), u, "FALSE"},
		{"udp6 ::.0.022: leading zeros, decimal 22", v3(13, 310013, "udp6", "::.0.022"), u, "FALSE"},
		{"udp6 ::.004.000: leading zeros, 1024", v3(14, 310014, "udp6", "::.004.000"), u, "TRUE"},
		{"tcp 16777216.22: 2^32 wraps to 22", v3(15, 310015, "tcp", "0.0.0.0.16777216.22"), u, "FALSE"},
		{"tcp huge p1: atoi saturates, -1*256+22 = 65302", v3(16, 310016, "tcp", "0.0.0.0.99999999999.22"), u, "TRUE"},
		{"tcp 3.300: rpcbind 1068, libtirpc 812", v3(17, 310017, "tcp", "0.0.0.0.3.300"), u, "FALSE"},
		{"udp 4.-1: rpcbind 1023", v3(18, 310018, "udp", "0.0.0.0.4.-1"), u, "FALSE"},
		{"udp -1.-1: 65279 and 65535", v3(19, 310019, "udp", "0.0.0.0.-1.-1"), u, "TRUE"},
		{"udp ' 0.+22': atoi skips space and sign", v3(20, 310020, "udp", "0.0.0.0. 0.+22"), u, "FALSE"},
		{"tcp /x.0.22: rpcbind's v2 view takes 22", v3(21, 310021, "tcp", "/x.0.22"), u, "FALSE"},
		{"tcp 8.1 NUL .0.22: stored as 2049, the NFS port", v3(22, 310022, "tcp", "0.0.0.0.8.1\x00.0.22"), u, "FALSE"},
		{"tcp 8.2 NUL .0.22: stored as 2050", v3(36, 310036, "tcp", "0.0.0.0.8.2\x00.0.22"), u, "TRUE"},
		{"TCP: looked up case-insensitively", v3(23, 310023, "TCP", "0.0.0.0.0.22"), u, "FALSE"},
		{"tcp NUL junk: stored as tcp, in the v2 view", v3(24, 310024, "tcp\x00junk", "0.0.0.0.0.22"), u, "FALSE"},
		{"v4 udp 0.0.0.0.1.0 (256)", setV4(25, 310025, "udp", "0.0.0.0.1.0"), u, "FALSE"},
		{"v4 tcp 0.0.0.0.8.1 (2049, the NFS port)", setV4(26, 310026, "tcp", "0.0.0.0.8.1"), u, "FALSE"},
		{"udp6 ::.7.257 (2049 by p1*256+p2)", v3(37, 310037, "udp6", "::.7.257"), u, "FALSE"},
		{"local path: no port", v3(27, 310027, "local", "/run/x.0.22"), u, "TRUE"},
		{"unknown netid: no transport serves it", v3(28, 310028, "foo", "0.0.0.0.0.22"), u, "TRUE"},
		{"one dot: no reader finds a port", v3(29, 310029, "tcp", "0.22"), u, "TRUE"},
		{"127.0.0.1 unprivileged source, 256.22", v3(30, 310030, "udp", "0.0.0.0.256.22"), udp("127.0.0.1:40000"), "FALSE"},
		{"root 256.22", v3(31, 310031, "udp", "0.0.0.0.256.22"), local(0, 0), "TRUE"},
		{"root v2 65536+111", v2(32, 310032, tcp, 65536+111), local(0, 0), "TRUE"},
	}
	refused := 0
	for _, tc := range cases {
		got := answer(t, g, tc.req, tc.c)
		if got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
		if got == "FALSE" {
			refused++
		}
	}
	if n := g.Stat.PortCheck.Load(); n != uint64(refused) {
		t.Errorf("PortCheck = %d, want %d", n, refused)
	}
	// Whatever was accepted from uid 1000: no client derives a port in
	// 1..1023 from what the table serves — GETPORT (v2 view, truncated
	// to 16 bits by xdr_u_short) and GETADDR (read by libtirpc).
	for _, e := range tab.Entries() {
		if e.Owner != "1000" {
			continue
		}
		if e.Netid == "tcp" || e.Netid == "udp" {
			prot := uint32(tcp)
			if e.Netid == "udp" {
				prot = udpP
			}
			m := pmap.Mapping{Prog: e.Prog, Vers: e.Vers, Prot: prot}
			if p := uint16(getUint32(t, g, call(90, 2, uint32(pmap.PmapProcGetPort), m.AppendXDR(nil)))); p > 0 && p < PrivPort || p == NFSPort {
				t.Errorf("%d %s %q: GETPORT serves port %d to clients", e.Prog, e.Netid, e.Addr, p)
			}
		}
		fam := pmap.FamilyOfNetid(strings.ToLower(e.Netid))
		if fam != pmap.FamilyInet && fam != pmap.FamilyInet6 {
			continue
		}
		if ap, ok := pmap.Uaddr2AddrPort(fam, e.Addr); ok && ap.Port() > 0 && ap.Port() < PrivPort || ap.Port() == NFSPort {
			t.Errorf("%d %s %q: libtirpc reads port %d", e.Prog, e.Netid, e.Addr, ap.Port())
		}
	}
}

// getUint32 sends req as a local caller and returns the reply's first
// result word.
func getUint32(t *testing.T, g *Guard, req []byte) uint32 {
	t.Helper()
	reply, send := g.ServeRPC(nil, req, local(1000, 0))
	if !send {
		t.Fatal("no reply")
	}
	res, err := rpc.ParseReply(reply, xidOf(req))
	if err != nil || len(res) < 4 {
		t.Fatalf("reply: %v (%d result bytes)", err, len(res))
	}
	var d xdr.Decoder
	d.Reset(res)
	return d.Uint32()
}

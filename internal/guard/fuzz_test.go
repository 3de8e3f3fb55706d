package guard

import (
	"net/netip"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/ratelimit"
	"github.com/openrpcbind/rpcbind/internal/registry"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/internal/testvec"
)

// FuzzGuard: any bytes through the guard and the service, on any
// transport, give silence or one well-formed reply to the call's XID; the
// owner counts always match the table, and the cap holds.
func FuzzGuard(f *testing.F) {
	for _, ex := range testvec.Load(f) {
		f.Add(ex.CallMsg(), uint8(0))
	}
	f.Add(setV2(1, 300001, 700), uint8(4))
	f.Add(setV4(2, 300002, "tcp", "0.0.0.0.2.188"), uint8(4))
	f.Add([]byte{}, uint8(1))
	callers := []access.Caller{
		{Netid: "udp", Addr: netip.MustParseAddrPort("127.0.0.1:700"), UID: -1},
		{Netid: "tcp", Addr: netip.MustParseAddrPort("127.0.0.1:40000"), UID: -1},
		{Netid: "udp6", Addr: netip.MustParseAddrPort("[::1]:40000"), UID: -1},
		{Netid: "udp", Addr: netip.MustParseAddrPort("192.0.2.7:1000"), UID: -1},
		{Netid: "local", UID: 1000, PID: 1},
		{Netid: "local", UID: 0, PID: 1},
	}
	const maxOwned = 4
	fresh := func() (*Guard, *registry.Table) {
		g, tab := setup(Config{MaxPerOwner: maxOwned, CheckPort: true, Limiter: ratelimit.New(ratelimit.Config{RefuseLists: true})})
		g.NewPruner(PruneConfig{})
		return g, tab
	}
	g, tab := fresh()
	f.Fuzz(func(t *testing.T, msg []byte, who uint8) {
		if tab.Len() > 64 { // keep iterations fast: superuser is never capped
			g, tab = fresh()
		}
		c := callers[int(who)%len(callers)]
		out, send := g.ServeRPC([]byte("pre"), msg, &c)
		if string(out[:3]) != "pre" {
			t.Fatal("prefix clobbered")
		}
		out = out[3:]
		if err := rpc.CheckServerReply(msg, out, send); err != nil {
			t.Fatalf("%v (%s)", err, testvec.Hex(out))
		}
		counts := map[string]int{}
		for _, e := range tab.Entries() {
			counts[e.Owner]++
		}
		for o, n := range counts {
			if g.Owned(o) != n {
				t.Fatalf("owner %q: counted %d, table holds %d", o, g.Owned(o), n)
			}
			if o != access.OwnerSuperuser && n > maxOwned {
				t.Fatalf("owner %q holds %d > cap %d", o, n, maxOwned)
			}
		}
		if err := tab.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	})
}

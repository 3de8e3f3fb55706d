package guard

import (
	"strings"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/registry"
	"github.com/openrpcbind/rpcbind/internal/service"
	"github.com/openrpcbind/rpcbind/pmap"
)

// bigAddr is a 4,400-byte universal address: with netid "tcp" and owner
// "1000" an entry counts 3 + 4400 + 4 + 32 = 4,439 bytes, so the default
// budget of 262,144 bytes holds 59 of them.
var bigAddr = strings.Repeat("9", 4400)

const bigEntry = 3 + 4400 + 4 + 32

func unsetV3(xid, prog uint32) []byte {
	return call(xid, 3, uint32(pmap.RPCBProcUnset), pmap.AppendRPCB(nil, prog, 1, "", "", ""))
}

// TestOwnerBytesBudget (issue 11, per-owner registration bytes): an
// unprivileged owner registering 4.4 KB addresses is refused (FALSE) once
// its bytes would pass the default budget, far below the count cap; a
// different owner still registers; superuser is unaffected; a re-SET of
// an existing entry gets the service's answer; UNSET returns the budget.
// On fee1c75 only the count cap (1,024) applied: all 100 were accepted.
func TestOwnerBytesBudget(t *testing.T) {
	g, tab := setup(Config{})
	u := local(1000, 0)
	accepted := 0
	for i := uint32(0); i < 100; i++ {
		got := answer(t, g, setV4(i, 500000+i, "tcp", bigAddr), u)
		if got == "FALSE" {
			break
		}
		if got != "TRUE" {
			t.Fatalf("SET %d: %s", i, got)
		}
		accepted++
	}
	if want := DefaultMaxRegBytesPerOwner / bigEntry; accepted != want {
		t.Fatalf("uid 1000 registered %d entries of %d bytes, want %d (budget %d)", accepted, bigEntry, want, DefaultMaxRegBytesPerOwner)
	}
	if got := answer(t, g, setV4(200, 500200, "tcp", "0.0.0.0.8.1"), u); got != "TRUE" {
		t.Errorf("a small entry that still fits: %s, want TRUE", got)
	}
	if got := answer(t, g, setV4(201, 500201, "tcp", bigAddr), u); got != "FALSE" {
		t.Errorf("over the budget: %s, want FALSE", got)
	}
	if got := answer(t, g, setV4(202, 500000, "tcp", bigAddr), u); got != "TRUE" {
		t.Errorf("re-SET of an existing entry over the budget: %s, want the service's TRUE", got)
	}
	if got := answer(t, g, setV4(203, 500001, "tcp", "0.0.0.0.8.2"), u); got != "FALSE" {
		t.Errorf("conflicting re-SET over the budget: %s, want the service's FALSE", got)
	}
	for _, c := range []*access.Caller{local(1001, 0), udp("127.0.0.1:40000")} {
		if got := answer(t, g, setV4(300, 510000+uint32(c.UID+1), "tcp", bigAddr), c); got != "TRUE" {
			t.Errorf("another owner (%s): %s, want TRUE", access.Owner(c), got)
		}
	}
	for i := uint32(0); i < 100; i++ {
		if got := answer(t, g, setV4(400+i, 520000+i, "tcp", bigAddr), local(0, 0)); got != "TRUE" {
			t.Fatalf("superuser SET %d: %s", i, got)
		}
	}
	if got := answer(t, g, unsetV3(500, 500003), u); got != "TRUE" {
		t.Fatalf("UNSET: %s", got)
	}
	if got := answer(t, g, setV4(501, 500201, "tcp", bigAddr), u); got != "TRUE" {
		t.Errorf("SET after an UNSET returned the bytes: %s, want TRUE", got)
	}
	if got := answer(t, g, setV4(502, 500202, "tcp", bigAddr), u); got != "FALSE" {
		t.Errorf("SET past the budget again: %s, want FALSE", got)
	}
	if err := tab.CheckInvariants(); err != nil {
		t.Error(err)
	}
}

// TestOwnerBytesAccounting: the charge follows every SET and UNSET, counts
// strings as stored (cut at NUL), starts from the loaded table (warm
// start) and refusals are counted and logged.
func TestOwnerBytesAccounting(t *testing.T) {
	tab := registry.New(registry.SelfEntries("::.0.111", "::.0.111", "0.0.0.0.0.111", "0.0.0.0.0.111", "/run/rpcbind.sock"))
	var saved []registry.Entry
	for i := uint32(0); i < 10; i++ {
		saved = append(saved, registry.Entry{Prog: 600000 + i, Vers: 1, Netid: "tcp", Addr: bigAddr, Owner: "1000"})
	}
	tab.Load(saved)
	var logs []string
	g := New(service.New(service.Config{Table: tab}), Config{
		Table: tab, MaxRegBytesPerOwner: 12 * bigEntry,
		Log: func(m []byte) { logs = append(logs, string(m)) },
	})
	tab.SetObserver(func(op registry.Op, e registry.Entry) error { g.Observe(op, e); return nil })
	if got := g.OwnedBytes("1000"); got != 10*bigEntry {
		t.Fatalf("loaded: %d bytes, want %d", got, 10*bigEntry)
	}
	u := local(1000, 0)
	// Cut at NUL as the table stores it: counts as bigAddr.
	if got := answer(t, g, setV4(1, 600010, "tcp\x00pad", bigAddr+"\x00"+strings.Repeat("p", 4000)), u); got != "TRUE" {
		t.Fatalf("11th: %s", got)
	}
	if got := g.OwnedBytes("1000"); got != 11*bigEntry {
		t.Errorf("after a SET: %d bytes, want %d", got, 11*bigEntry)
	}
	if got := answer(t, g, setV4(2, 600011, "tcp", bigAddr), u); got != "TRUE" {
		t.Fatalf("12th: %s", got)
	}
	if got := answer(t, g, setV2(3, 600012, 2049), u); got != "FALSE" {
		t.Errorf("13th (a small v2 entry, over by its size): %s, want FALSE", got)
	}
	if g.Stat.OverBytes.Load() != 1 || g.Stat.OverCap.Load() != 0 || len(logs) != 1 || !strings.Contains(logs[0], "budget") {
		t.Errorf("OverBytes %d, OverCap %d, logs %q", g.Stat.OverBytes.Load(), g.Stat.OverCap.Load(), logs)
	}
	if got := answer(t, g, unsetV3(4, 600000), u); got != "TRUE" {
		t.Fatalf("UNSET: %s", got)
	}
	if got := g.OwnedBytes("1000"); got != 11*bigEntry {
		t.Errorf("after an UNSET: %d bytes, want %d", got, 11*bigEntry)
	}
	for i := uint32(0); i <= 12; i++ {
		tab.Unset(600000+i, 1, "", "1000")
	}
	if got, n := g.OwnedBytes("1000"), g.Owned("1000"); got != 0 || n != 0 {
		t.Errorf("all removed: %d bytes, %d entries", got, n)
	}
}

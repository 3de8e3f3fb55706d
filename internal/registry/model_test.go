package registry

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/openrpcbind/rpcbind/xdr"
)

// model is a literal, slow transcription of the reference's list code
// (rpcb_svc_com.c map_set, map_unset with the all-or-nothing fix,
// find_service, find_versions; pmap_svc.c find_service_pmap over a v2 view
// derived from the list). The table must agree with it on every answer.
type model struct{ list []Entry }

// strcasecmp == 0 in the C locale.
func caseEq(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func (m *model) findService(prog, vers uint32, netid string) int {
	hit := -1
	for i, e := range m.list {
		if e.Prog != prog || !caseEq(e.Netid, netid) {
			continue
		}
		hit = i
		if e.Vers == vers {
			break
		}
	}
	return hit
}

func (m *model) set(e Entry) bool {
	e = cEntry(e)
	if i := m.findService(e.Prog, e.Vers, e.Netid); i >= 0 && m.list[i].Vers == e.Vers {
		return m.list[i].Addr == e.Addr
	}
	m.list = append(m.list, e)
	return true
}

func (m *model) setV2(prog, vers, prot, port uint32, owner string) bool {
	netid := map[uint32]string{6: "tcp", 17: "udp"}[prot]
	if netid == "" {
		return false
	}
	return m.set(Entry{prog, vers, netid, fmt.Sprintf("0.0.0.0.%d.%d", port>>8&0xff, port&0xff), owner})
}

func (m *model) matches(e Entry, prog, vers uint32, netid string) bool {
	return e.Prog == prog && e.Vers == vers && (netid == "" || caseEq(netid, e.Netid))
}

func (m *model) unset(prog, vers uint32, netid, owner string) bool {
	netid = cString(netid)
	for _, e := range m.list {
		if m.matches(e, prog, vers, netid) && owner != "superuser" && e.Owner != owner {
			return false
		}
	}
	m.list = slices.DeleteFunc(m.list, func(e Entry) bool { return m.matches(e, prog, vers, netid) })
	return true
}

type mapping struct{ prog, vers, prot, port uint32 }

func (m *model) v2() []mapping {
	var out []mapping
	for _, e := range m.list {
		if prot, port, ok := v2Port(e.Netid, e.Addr); ok {
			out = append(out, mapping{e.Prog, e.Vers, prot, port})
		}
	}
	return out
}

func (m *model) getPort(prog, vers, prot uint32) uint32 {
	var hit *mapping
	for _, p := range m.v2() {
		if p.prog != prog || p.prot != prot {
			continue
		}
		hit = &p
		if p.vers == vers {
			break
		}
	}
	if hit == nil {
		return 0
	}
	return hit.port
}

func (m *model) versRange(prog uint32, netid string) (low, high uint32, ok bool) {
	for _, e := range m.list {
		if e.Prog != prog || !caseEq(e.Netid, netid) {
			continue
		}
		ok = true
		if low == 0 {
			high = e.Vers
			low = high
		} else if e.Vers < low {
			low = e.Vers
		} else if e.Vers > high {
			high = e.Vers
		}
	}
	return
}

func (m *model) dumpV2() []byte {
	var b []byte
	for _, p := range m.v2() {
		b = xdr.AppendUint32(b, 1)
		b = xdr.AppendUint32(b, p.prog)
		b = xdr.AppendUint32(b, p.vers)
		b = xdr.AppendUint32(b, p.prot)
		b = xdr.AppendUint32(b, p.port)
	}
	return xdr.AppendUint32(b, 0)
}

func (m *model) dumpV3() []byte {
	var b []byte
	for _, e := range m.list {
		b = xdr.AppendUint32(b, 1)
		b = xdr.AppendUint32(b, e.Prog)
		b = xdr.AppendUint32(b, e.Vers)
		b = xdr.AppendString(b, e.Netid)
		b = xdr.AppendString(b, e.Addr)
		b = xdr.AppendString(b, e.Owner)
	}
	return xdr.AppendUint32(b, 0)
}

// The small domains the operations draw from: case variants of the netids,
// addresses the v2 view accepts and rejects, owners that may and may not
// remove each other's entries.
var (
	domProgs  = []uint32{100000, 300001, 300002}
	domVers   = []uint32{0, 1, 2, 3}
	domNetids = []string{"tcp", "udp", "TCP", "Udp", "tcp6", "udp6", "UDP6", "local", "", "foo", "tcp\x00x"}
	domAddrs  = []string{"0.0.0.0.3.232", "0.0.0.0.3.233", "127.0.0.1.0.111", "::.1.2", "junk", "1.2", "..", "0.0.0.0.300.1", "/run/x.sock", ""}
	domOwners = []string{"superuser", "unknown", "1000"}
	domProts  = []uint32{6, 17, 99}
)

// applyOp decodes one operation from 5 bytes and applies it to both the
// table and the model, failing when their answers differ.
func applyOp(tb testing.TB, tab *Table, m *model, op [5]byte) {
	tb.Helper()
	pick := func(n int, b byte) int { return int(b) % n }
	prog := domProgs[pick(len(domProgs), op[1]>>4)]
	vers := domVers[pick(len(domVers), op[1])]
	owner := domOwners[pick(len(domOwners), op[4])]
	switch op[0] % 4 {
	case 0:
		e := Entry{prog, vers, domNetids[pick(len(domNetids), op[2])], domAddrs[pick(len(domAddrs), op[3])], owner}
		if got, want := tab.Set(e), m.set(e); got != want {
			tb.Fatalf("Set(%+v) = %v, model %v", e, got, want)
		}
	case 1:
		prot, port := domProts[pick(len(domProts), op[2])], uint32(op[3])*300
		if got, want := tab.SetV2(prog, vers, prot, port, owner), m.setV2(prog, vers, prot, port, owner); got != want {
			tb.Fatalf("SetV2(%d, %d, %d, %d) = %v, model %v", prog, vers, prot, port, got, want)
		}
	case 2:
		netid := domNetids[pick(len(domNetids), op[2])]
		if got, want := tab.Unset(prog, vers, netid, owner), m.unset(prog, vers, netid, owner); got != want {
			tb.Fatalf("Unset(%d, %d, %q, %q) = %v, model %v", prog, vers, netid, owner, got, want)
		}
	case 3:
		a := m.unset(prog, vers, "tcp", owner)
		b := m.unset(prog, vers, "udp", owner)
		if got := tab.UnsetV2(prog, vers, owner); got != (a || b) {
			tb.Fatalf("UnsetV2(%d, %d, %q) = %v, model %v", prog, vers, owner, got, a || b)
		}
	}
}

// compare checks every query of the table against the model.
func compare(tb testing.TB, tab *Table, m *model) {
	tb.Helper()
	if err := tab.CheckInvariants(); err != nil {
		tb.Fatal(err)
	}
	if got := tab.Entries(); !slices.Equal(got, m.list) && !(len(got) == 0 && len(m.list) == 0) {
		tb.Fatalf("Entries = %+v\nmodel     %+v", got, m.list)
	}
	if got, want := tab.AppendDumpV2(nil), m.dumpV2(); !bytes.Equal(got, want) {
		tb.Fatalf("v2 DUMP = %x, model %x", got, want)
	}
	if got, want := tab.AppendDumpV3(nil), m.dumpV3(); !bytes.Equal(got, want) {
		tb.Fatalf("v3 DUMP = %x, model %x", got, want)
	}
	for _, prog := range domProgs {
		for _, vers := range append(domVers, 9) {
			for _, prot := range domProts {
				if got, want := tab.GetPort(prog, vers, prot), m.getPort(prog, vers, prot); got != want {
					tb.Fatalf("GetPort(%d, %d, %d) = %d, model %d", prog, vers, prot, got, want)
				}
			}
			for _, netid := range domNetids {
				i := m.findService(prog, vers, cString(netid))
				var want Entry
				if i >= 0 {
					want = m.list[i]
				}
				if e, ok := tab.Find(prog, vers, netid); ok != (i >= 0) || e != want {
					tb.Fatalf("Find(%d, %d, %q) = %+v, %v; model %+v", prog, vers, netid, e, ok, want)
				}
				if netid != cString(netid) {
					continue // GetAddr takes a transport's netid
				}
				addr, ok := tab.GetAddr(prog, vers, []byte(netid), false)
				if ok != (i >= 0) || addr != want.Addr {
					tb.Fatalf("GetAddr(%d, %d, %q) = %q, %v; model %+v", prog, vers, netid, addr, ok, want)
				}
				exact := i >= 0 && want.Vers == vers
				addr, ok = tab.GetAddr(prog, vers, []byte(netid), true)
				if ok != exact || (exact && addr != want.Addr) || (!exact && addr != "") {
					tb.Fatalf("GetAddr(%d, %d, %q, exact) = %q, %v; model %+v", prog, vers, netid, addr, ok, want)
				}
			}
			var got, want []Entry
			tab.ByProgVers(prog, vers, func(e Entry) { got = append(got, e) })
			for _, e := range m.list {
				if e.Prog == prog && e.Vers == vers {
					want = append(want, e)
				}
			}
			if !slices.Equal(got, want) {
				tb.Fatalf("ByProgVers(%d, %d) = %+v, model %+v", prog, vers, got, want)
			}
		}
		for _, netid := range domNetids {
			l, h, ok := tab.VersRange(prog, netid)
			ml, mh, mok := m.versRange(prog, cString(netid))
			if l != ml || h != mh || ok != mok {
				tb.Fatalf("VersRange(%d, %q) = %d, %d, %v; model %d, %d, %v", prog, netid, l, h, ok, ml, mh, mok)
			}
		}
	}
}

// journal replays the observer's notifications: it must always end up
// equal to the table's master list.
type journal struct{ list []Entry }

func (j *journal) observe(op Op, e Entry) error {
	switch op {
	case OpSet:
		j.list = append(j.list, e)
	case OpUnset:
		i := slices.Index(j.list, e)
		if i < 0 {
			return fmt.Errorf("unset of unknown entry %+v", e)
		}
		j.list = slices.Delete(j.list, i, i+1)
	}
	return nil
}

func runOps(tb testing.TB, ops []byte) {
	tab := New(referenceSelf())
	m := &model{list: cloneEntries(referenceSelf())}
	j := &journal{list: cloneEntries(referenceSelf())}
	tab.SetObserver(j.observe)
	tab.OnError(func(op Op, e Entry, err error) { tb.Fatalf("observer: %v %+v: %v", op, e, err) })
	for len(ops) >= 5 {
		applyOp(tb, tab, m, [5]byte(ops[:5]))
		ops = ops[5:]
		compare(tb, tab, m)
		if !slices.Equal(j.list, m.list) {
			tb.Fatalf("journal = %+v\nmodel     %+v", j.list, m.list)
		}
	}
}

func cloneEntries(es []Entry) []Entry { return append([]Entry(nil), es...) }

func TestRandomAgainstModel(t *testing.T) {
	for seed := uint64(1); seed <= 16; seed++ {
		r := rand.New(rand.NewPCG(seed, 0x72706362))
		ops := make([]byte, 5*250)
		for i := range ops {
			ops[i] = byte(r.Uint32())
		}
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runOps(t, ops) })
	}
}

func FuzzTableOps(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0x11, 0, 0, 0, 2, 0x11, 0, 0, 1})                     // set, then unset by another owner
	f.Add([]byte{1, 0x12, 0, 233, 0, 0, 0x12, 2, 0, 0, 3, 0x12, 0, 0, 1}) // v2 set, v3 set TCP, v2 unset
	f.Add([]byte{0, 0x10, 1, 7, 2, 0, 0x11, 1, 6, 2, 2, 0x10, 8, 0, 0})   // "" unset
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 5*200 {
			ops = ops[:5*200]
		}
		runOps(t, ops)
	})
}

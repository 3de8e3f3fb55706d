package registry

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/testvec"
	"github.com/openrpcbind/rpcbind/xdr"
)

// The reference daemon of the vectors listened on the wildcard addresses
// with its local socket at /run/rpcbind.sock (testvectors/README.md;
// exchange 2 shows these 12 entries).
func referenceSelf() []Entry {
	return SelfEntries("::.0.111", "::.0.111", "0.0.0.0.0.111", "0.0.0.0.0.111", "/run/rpcbind.sock")
}

// call is the part of an RPC call the replay needs.
type call struct {
	vers, proc uint32
	args       []byte
}

func parseCall(t *testing.T, msg []byte) (call, bool) {
	t.Helper()
	d := xdr.NewDecoder(msg)
	d.Uint32() // xid
	if d.Uint32() != 0 || d.Uint32() != 2 || d.Uint32() != ProgRPCB {
		return call{}, false // not a CALL, wrong rpcvers or another program
	}
	var c call
	c.vers, c.proc = d.Uint32(), d.Uint32()
	d.Uint32()
	d.Opaque(400) // cred
	d.Uint32()
	d.Opaque(400) // verf
	if d.Err() != nil {
		t.Fatalf("call header: %v", d.Err())
	}
	c.args = d.Rest()
	return c, true
}

// reply is the outcome of an RPC reply.
type reply struct {
	denied     bool
	authStat   uint32 // when denied with AUTH_ERROR
	acceptStat uint32
	results    []byte // the bytes after accept_stat
}

func parseReply(t *testing.T, msg []byte) reply {
	t.Helper()
	d := xdr.NewDecoder(msg)
	d.Uint32() // xid
	if d.Uint32() != 1 {
		t.Fatal("reply: not a REPLY")
	}
	var r reply
	if d.Uint32() == 1 { // MSG_DENIED
		r.denied = true
		if d.Uint32() == 1 { // AUTH_ERROR
			r.authStat = d.Uint32()
		}
		return r
	}
	d.Uint32()
	d.Opaque(400) // verf
	r.acceptStat = d.Uint32()
	if d.Err() != nil {
		t.Fatalf("reply header: %v", d.Err())
	}
	r.results = d.Rest()
	return r
}

type rpcbArgs struct {
	prog, vers         uint32
	netid, addr, owner string
}

func decodeRPCB(args []byte) (a rpcbArgs, ok bool) {
	d := xdr.NewDecoder(args)
	a.prog, a.vers = d.Uint32(), d.Uint32()
	a.netid, a.addr, a.owner = d.String(xdr.MaxDataSize), d.String(xdr.MaxDataSize), d.String(xdr.MaxDataSize)
	return a, d.Err() == nil
}

func decodeBool(t *testing.T, res []byte) bool {
	t.Helper()
	d := xdr.NewDecoder(res)
	v := d.Uint32()
	if d.Finish() != nil || v > 1 {
		t.Fatalf("result %x is not a bool", res)
	}
	return v == 1
}

// portPart returns the last two dot fields of a uaddr: the part address
// merging (not this package's job) never changes.
func portPart(uaddr string) string {
	i := strings.LastIndexByte(uaddr, '.')
	if i < 0 {
		return ""
	}
	j := strings.LastIndexByte(uaddr[:i], '.')
	if j < 0 {
		return ""
	}
	return uaddr[j:]
}

var family = map[string]string{"udp": "inet", "tcp": "inet", "udp6": "inet6", "tcp6": "inet6", "local": "loopback", "unix": "loopback"}

// TestReplayVectors replays every exchange of the reference capture that
// touches the registration table — v2 SET/UNSET/GETPORT/DUMP, v3/v4
// SET/UNSET/GETADDR/DUMP, v4 GETVERSADDR/GETADDRLIST/INDIRECT — in order,
// against one table, and compares the table's answers with the reference's
// replies: booleans and ports exactly, DUMP bodies byte for byte, GETADDR by
// found/not found and port (the host part is merged by the service).
// Owners and SET/UNSET permission come from internal/access applied to the
// exchange's transport and source address.
func TestReplayVectors(t *testing.T) {
	tab := New(referenceSelf())
	counts := map[string]int{}
	for _, x := range testvec.Load(t) {
		c, ok := parseCall(t, x.CallMsg())
		if !ok || x.Reply == nil || c.vers < 2 || c.vers > 4 {
			continue
		}
		r := parseReply(t, x.ReplyMsg())
		src, err := netip.ParseAddrPort(x.From)
		if err != nil {
			t.Fatalf("exchange %d: source %q: %v", x.N, x.From, err)
		}
		caller := access.Caller{Netid: x.Transport, Addr: src, UID: -1}
		owner := access.Owner(&caller)
		change := c.proc == 1 || c.proc == 2 // SET, UNSET in every version
		if r.denied {
			// Only the access check denies here; bad credentials (161–163)
			// are rejected before any procedure runs.
			if r.authStat == 5 && change {
				if access.MayChange(&caller, false) {
					t.Errorf("exchange %d (%s): reference said AUTH_TOOWEAK, access allows the change", x.N, x.Title)
				}
				counts["denied"]++
			}
			continue
		}
		if change && !access.MayChange(&caller, false) {
			t.Errorf("exchange %d (%s): access denies a change the reference made", x.N, x.Title)
			continue
		}
		if r.acceptStat == 4 { // GARBAGE_ARGS (158–160)
			continue
		}
		name := []string{"", "v2", "v3", "v4"}[c.vers-1] + " "
		switch {
		case c.vers == 2 && (c.proc == 1 || c.proc == 2 || c.proc == 3):
			d := xdr.NewDecoder(c.args)
			prog, vers, prot, port := d.Uint32(), d.Uint32(), d.Uint32(), d.Uint32()
			if d.Err() != nil {
				t.Fatalf("exchange %d: pmap args: %v", x.N, d.Err())
			}
			switch c.proc {
			case 1:
				name += "SET"
				if got, want := tab.SetV2(prog, vers, prot, port, owner), decodeBool(t, r.results); got != want {
					t.Errorf("exchange %d (%s): SetV2 = %v, reference %v", x.N, x.Title, got, want)
				}
			case 2:
				name += "UNSET"
				if got, want := tab.UnsetV2(prog, vers, owner), decodeBool(t, r.results); got != want {
					t.Errorf("exchange %d (%s): UnsetV2 = %v, reference %v", x.N, x.Title, got, want)
				}
			case 3:
				name += "GETPORT"
				d := xdr.NewDecoder(r.results)
				want := d.Uint32()
				if got := tab.GetPort(prog, vers, prot); got != want || d.Finish() != nil {
					t.Errorf("exchange %d (%s): GetPort = %d, reference %d", x.N, x.Title, got, want)
				}
			}
		case c.proc == 4: // DUMP
			name += "DUMP"
			var got []byte
			if c.vers == 2 {
				got = tab.AppendDumpV2([]byte{0xde, 0xad})
			} else {
				got = tab.AppendDumpV3([]byte{0xde, 0xad})
			}
			if !bytes.Equal(got[:2], []byte{0xde, 0xad}) || !bytes.Equal(got[2:], r.results) {
				t.Errorf("exchange %d (%s): DUMP body differs\n got %s\nwant %s", x.N, x.Title, testvec.Hex(got[2:]), testvec.Hex(r.results))
			}
		case c.vers >= 3 && (c.proc == 1 || c.proc == 2 || c.proc == 3 || (c.vers == 4 && c.proc == 9)):
			a, ok := decodeRPCB(c.args)
			if !ok {
				t.Fatalf("exchange %d: rpcb args do not decode", x.N)
			}
			switch c.proc {
			case 1:
				name += "SET"
				e := Entry{Prog: a.prog, Vers: a.vers, Netid: a.netid, Addr: a.addr, Owner: owner}
				if got, want := tab.Set(e), decodeBool(t, r.results); got != want {
					t.Errorf("exchange %d (%s): Set = %v, reference %v", x.N, x.Title, got, want)
				}
			case 2:
				name += "UNSET"
				if got, want := tab.Unset(a.prog, a.vers, a.netid, owner), decodeBool(t, r.results); got != want {
					t.Errorf("exchange %d (%s): Unset = %v, reference %v", x.N, x.Title, got, want)
				}
			case 3, 9:
				name += map[uint32]string{3: "GETADDR", 9: "GETVERSADDR"}[c.proc]
				d := xdr.NewDecoder(r.results)
				want := d.String(xdr.MaxDataSize)
				if d.Finish() != nil {
					t.Fatalf("exchange %d: uaddr result: %v", x.N, d.Err())
				}
				// The request's r_netid is ignored: the arrival netid counts.
				got, ok := tab.GetAddr(a.prog, a.vers, []byte(x.Transport), c.proc == 9)
				if ok != (want != "") || portPart(got) != portPart(want) {
					t.Errorf("exchange %d (%s): GetAddr = %q, %v; reference %q", x.N, x.Title, got, ok, want)
				}
				if a.addr == "junk" && got != want { // an unusable hint returns the registration as is
					t.Errorf("exchange %d (%s): GetAddr = %q, reference %q", x.N, x.Title, got, want)
				}
			}
		case c.vers == 4 && c.proc == 11: // GETADDRLIST: the entries of the arrival family, in order
			name += "GETADDRLIST"
			a, ok := decodeRPCB(c.args)
			if !ok {
				t.Fatalf("exchange %d: rpcb args do not decode", x.N)
			}
			var want []string
			d := xdr.NewDecoder(r.results)
			for d.More() {
				d.String(xdr.MaxDataSize) // r_maddr
				want = append(want, d.String(xdr.MaxDataSize))
				d.Uint32()
				d.String(xdr.MaxDataSize)
				d.String(xdr.MaxDataSize)
			}
			if d.Finish() != nil {
				t.Fatalf("exchange %d: entry list: %v", x.N, d.Err())
			}
			var got []string
			tab.ByProgVers(a.prog, a.vers, func(e Entry) {
				if family[e.Netid] == family[x.Transport] {
					got = append(got, e.Netid)
				}
			})
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("exchange %d (%s): ByProgVers netids %q, reference %q", x.N, x.Title, got, want)
			}
		case c.vers == 4 && c.proc == 10: // INDIRECT, daemon without -r
			name += "INDIRECT"
			d := xdr.NewDecoder(c.args)
			prog, vers, proc := d.Uint32(), d.Uint32(), d.Uint32()
			if d.Err() != nil {
				t.Fatalf("exchange %d: rmtcall args: %v", x.N, d.Err())
			}
			if !access.CallitAllowed(prog, proc, false) {
				t.Errorf("exchange %d (%s): CallitAllowed = true, reference denied", x.N, x.Title)
			}
			e, ok := tab.Find(prog, vers, x.Transport)
			switch r.acceptStat {
			case 1: // PROG_UNAVAIL: nothing on the arrival netid
				if ok {
					t.Errorf("exchange %d (%s): Find = %+v, reference PROG_UNAVAIL", x.N, x.Title, e)
				}
			case 5: // SYSTEM_ERR: registered with that version, but no forwarder
				if !ok || e.Vers != vers {
					t.Errorf("exchange %d (%s): Find = %+v, %v; reference found it", x.N, x.Title, e, ok)
				}
			default:
				t.Errorf("exchange %d (%s): unexpected accept_stat %d", x.N, x.Title, r.acceptStat)
			}
		default:
			continue
		}
		counts[name]++
		if err := tab.CheckInvariants(); err != nil {
			t.Fatalf("exchange %d: %v", x.N, err)
		}
	}
	// The capture holds these many exchanges of each kind; a replay that
	// skipped them would prove nothing.
	want := map[string]int{
		"v2 SET": 7, "v2 UNSET": 2, "v2 GETPORT": 8, "v2 DUMP": 4,
		"v3 SET": 11, "v3 UNSET": 7, "v3 GETADDR": 14, "v3 DUMP": 3,
		"v4 SET": 12, "v4 UNSET": 4, "v4 GETADDR": 14, "v4 GETVERSADDR": 4,
		"v4 GETADDRLIST": 4, "v4 DUMP": 6, "v4 INDIRECT": 3, "denied": 6,
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("replayed %d %s exchanges, want %d", counts[k], k, n)
		}
	}
	for k := range counts {
		if _, ok := want[k]; !ok {
			t.Errorf("replayed %d unexpected %s exchanges", counts[k], k)
		}
	}
}

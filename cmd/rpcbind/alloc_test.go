package main

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/registry"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/internal/server"
	"github.com/openrpcbind/rpcbind/pmap"
)

// TestComposedHandlerZeroAllocs (issue 13): a request costs no allocation
// on the handler as the daemon composes it (guard, hosts access, service,
// statistics, logger), for every caller and logging mode, whether or not
// a line is written. A SET+UNSET pair that changes the table allocates
// exactly what the same change made on the table directly does (the
// entry it keeps, its address and owner strings, and its observers': the
// guard's count, the journal's copy), nothing on the way.
func TestComposedHandlerZeroAllocs(t *testing.T) {
	for _, args := range allocModes {
		t.Run(fmt.Sprint(args), func(t *testing.T) {
			cs := newComposed(t, args...)
			for _, c := range allocCallers() {
				tr := &transport{out: make([]byte, 0, 1024)}
				if isUDP(c) {
					tr.out = make([]byte, 0, server.UDPBufSize)
				}
				for _, call := range allocCalls() {
					run := func() {
						for _, req := range call.reqs {
							tr.serve(cs.h, req, c)
						}
					}
					for range 3 {
						run() // statistics keys, limiter state, caches
					}
					// An empty journal: no compaction in the 2 x 51
					// records of either measurement.
					cs.compact(t)
					n := testing.AllocsPerRun(50, run)
					want := 0.0
					if len(call.reqs) == 2 {
						cs.compact(t)
						want = tableChangeAllocs(t, cs, c, call.reqs[0])
					}
					if n != want {
						t.Errorf("%s from %s: %v allocations per run, want %v", call.name, callerName(c), n, want)
					}
				}
			}
			if len(args) > 0 && args[len(args)-1] != "-f" && cs.lines.lines.Load() == 0 {
				t.Errorf("%v: no line was logged", args)
			}
		})
	}
}

func (cs *composed) compact(t testing.TB) {
	if err := cs.store.Compact(cs.tab.Entries()); err != nil {
		t.Fatal(err)
	}
}

// tableChangeAllocs returns the allocations of the change a SET+UNSET pair
// makes for c, made on the table directly (its observers included: the
// guard's counts, the journal) with the strings the entry keeps built
// fresh, as from the wire; 0 when c may not change the table.
func tableChangeAllocs(t testing.TB, cs *composed, c *access.Caller, set []byte) float64 {
	var h rpc.CallHeader
	if _, err := rpc.ParseCall(set, &h); err != nil {
		t.Fatal(err)
	}
	if !access.MayChange(c, false) {
		return 0
	}
	if h.Vers == 2 { // the table builds the address
		return testing.AllocsPerRun(50, func() {
			owner := access.Owner(c)
			cs.tab.SetV2(400001, 1, 17, 4000, owner)
			cs.tab.UnsetV2(400001, 1, owner)
		})
	}
	addr := []byte("0.0.0.0.15.161")
	return testing.AllocsPerRun(50, func() {
		owner := access.Owner(c)
		cs.tab.Set(registry.Entry{Prog: 400002, Vers: 1, Netid: "udp", Addr: string(addr), Owner: owner})
		cs.tab.Unset(400002, 1, "udp", owner)
	})
}

// A SET the guard refuses (the owner's registration cap, CHECK_PORT) costs
// no allocation either, its warning written or dropped by the rate limit
// (100 refusals: the burst of 50 is written, the rest dropped).
func TestComposedHandlerRefusalAllocs(t *testing.T) {
	set := func(prog, port uint32) []byte {
		return pmapCall(2, pmap.PmapProcSet, (&pmap.Mapping{Prog: prog, Vers: 1, Prot: 17, Port: port}).AppendXDR(nil))
	}
	for _, tc := range []struct {
		name string
		req  []byte
	}{
		{"over the cap", set(500002, 5001)},
		{"CHECK_PORT", set(500003, 80)},
	} {
		for _, sink := range [][]string{{"-f"}, {}} {
			cs := newComposed(t, append(sink, "--max-regs-per-owner=1", "--check-port")...)
			c := &access.Caller{Netid: "local", UID: 1000, PID: 4322}
			tr := &transport{out: make([]byte, 0, 1024)}
			if reply, _, _ := tr.serve(cs.h, set(500001, 5000), c); !bytes.HasSuffix(reply, []byte{0, 0, 0, 1}) {
				t.Fatalf("%v: the first SET was refused: % x", sink, reply)
			}
			n := testing.AllocsPerRun(100, func() {
				if reply, _, _ := tr.serve(cs.h, tc.req, c); !bytes.HasSuffix(reply, []byte{0, 0, 0, 0}) {
					t.Fatalf("%s: SET accepted", tc.name)
				}
			})
			if n != 0 {
				t.Errorf("%v: SET refused for %s: %v allocations per request", sink, tc.name, n)
			}
			if len(sink) > 0 && cs.lines.lines.Load() != 50 {
				t.Errorf("%v: SET refused for %s: %d lines logged, want the burst of 50", sink, tc.name, cs.lines.lines.Load())
			}
		}
	}
}

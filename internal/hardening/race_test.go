package hardening

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/guard"
	"github.com/openrpcbind/rpcbind/internal/ratelimit"
	"github.com/openrpcbind/rpcbind/internal/registry"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/internal/server"
	"github.com/openrpcbind/rpcbind/internal/service"
	"github.com/openrpcbind/rpcbind/pmap"
	"github.com/openrpcbind/rpcbind/xdr"
)

// v2View derives the v2 view from the master list as DECISIONS defines it
// (netid exactly udp or tcp, parsable port, 16-bit truncation) and
// compares it with what DUMP v2 returns. The two reads are consistent when
// the cached DUMP is the same buffer before and after (a change replaces
// it); otherwise the check is retried.
func v2View(t *registry.Table) error {
	for {
		d2 := t.DumpV2()
		entries := t.Entries()
		if after := t.DumpV2(); &after[0] != &d2[0] {
			continue
		}
		return compareV2(d2, entries)
	}
}

func compareV2(d2 []byte, entries []registry.Entry) error {
	var want []pmap.Mapping
	for _, e := range entries {
		var prot uint32
		switch e.Netid {
		case "udp":
			prot = pmap.IPProtoUDP
		case "tcp":
			prot = pmap.IPProtoTCP
		default:
			continue
		}
		p, ok := pmap.UaddrPort(e.Addr)
		if !ok {
			continue
		}
		want = append(want, pmap.Mapping{Prog: e.Prog, Vers: e.Vers, Prot: prot, Port: uint32(p) & 0xffff})
	}
	got, err := pmap.DecodeDumpV2(d2)
	if err != nil {
		return err
	}
	if len(got) != len(want) {
		return fmt.Errorf("v2 DUMP has %d entries, the master list derives %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Errorf("v2 DUMP entry %d is %+v, the master list derives %+v", i, got[i], want[i])
		}
	}
	return nil
}

// TestServerRace: the real server (UDP and TCP on loopback, ephemeral
// ports) with the guard and the service, under concurrent SET, UNSET,
// GETPORT and DUMP from many clients, while a checker runs the table's
// invariants and compares the v2 view with the master list. Run with
// -race (make test does).
func TestServerRace(t *testing.T) {
	tab := registry.New(registry.SelfEntries("", "", "0.0.0.0.0.111", "0.0.0.0.0.111", ""))
	svc := service.New(service.Config{Table: tab})
	g := guard.New(svc, guard.Config{Table: tab, Limiter: ratelimit.New(ratelimit.Config{})})
	tab.SetObserver(func(op registry.Op, e registry.Entry) error { g.Observe(op, e); return nil })
	srv := server.New(g, server.Options{})
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Start(&server.Socket{Netid: "udp", Addr: "127.0.0.1.0.0", Packet: pc})
	srv.Start(&server.Socket{Netid: "tcp", Addr: "127.0.0.1.0.0", Listener: ln})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()

	const workers, rounds = 8, 150
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var calls, checks atomic.Int64
	stop := make(chan struct{})
	var checkErr error
	checked := make(chan struct{})
	go func() {
		defer close(checked)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := tab.CheckInvariants(); err != nil {
				checkErr = err
				return
			}
			if err := v2View(tab); err != nil {
				checkErr = err
				return
			}
			checks.Add(1)
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			network, addr := "udp", pc.LocalAddr().String()
			if w%2 == 1 {
				network, addr = "tcp", ln.Addr().String()
			}
			c, err := rpc.Dial(network, addr, rpc.ClientOptions{Timeout: 5 * time.Second, Retransmit: 200 * time.Millisecond})
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for i := 0; i < rounds; i++ {
				// Programs shared between workers so SET/UNSET collide.
				prog := uint32(300000 + i%17)
				vers := uint32(1 + w%3)
				netid := []string{"udp", "tcp", "udp6", "tcp6", "TCP"}[(i+w)%5]
				var err error
				switch (i + w) % 6 {
				case 0, 1:
					_, err = c.Call(ctx, pmap.Prog, 4, uint32(pmap.RPCBProcSet), nil,
						pmap.AppendRPCB(nil, prog, vers, netid, fmt.Sprintf("127.0.0.1.%d.%d", w, i%256), ""))
				case 2:
					m := pmap.Mapping{Prog: prog, Vers: vers, Prot: pmap.IPProtoTCP, Port: uint32(70000 + i)}
					_, err = c.Call(ctx, pmap.Prog, 2, uint32(pmap.PmapProcSet), nil, m.AppendXDR(nil))
				case 3:
					if i%2 == 0 {
						m := pmap.Mapping{Prog: prog, Vers: vers}
						_, err = c.Call(ctx, pmap.Prog, 2, uint32(pmap.PmapProcUnset), nil, m.AppendXDR(nil))
					} else {
						_, err = c.Call(ctx, pmap.Prog, 3, uint32(pmap.RPCBProcUnset), nil, pmap.AppendRPCB(nil, prog, vers, "", "", ""))
					}
				case 4:
					m := pmap.Mapping{Prog: prog, Vers: vers, Prot: pmap.IPProtoTCP}
					var res []byte
					res, err = c.Call(ctx, pmap.Prog, 2, uint32(pmap.PmapProcGetPort), nil, m.AppendXDR(nil))
					if err == nil && len(res) != 4 {
						err = fmt.Errorf("GETPORT result of %d bytes", len(res))
					}
				case 5:
					var res []byte
					res, err = c.Call(ctx, pmap.Prog, uint32(2+i%3), uint32(pmap.PmapProcDump), nil, nil)
					if err == nil {
						var d xdr.Decoder
						d.Reset(res)
						if !d.More() && len(res) < 4 {
							err = fmt.Errorf("DUMP of %d bytes", len(res))
						}
					}
				}
				if err != nil {
					t.Errorf("worker %d call %d: %v", w, i, err)
					return
				}
				calls.Add(1)
			}
		}(w)
	}
	wg.Wait()
	close(stop)
	<-checked
	if checkErr != nil {
		t.Fatal(checkErr)
	}
	if err := tab.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	if err := v2View(tab); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d calls, %d invariant checks during the load, %d entries at the end", calls.Load(), checks.Load(), tab.Len())
	if checks.Load() < 2 {
		t.Errorf("only %d checks ran during the load", checks.Load())
	}
}

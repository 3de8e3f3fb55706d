package e2e

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
	"github.com/openrpcbind/rpcbind/xdr"
)

// echoProg is the program of the tiny UDP service the forwarding tests
// register; its procedure 1 answers with its arguments.
const echoProg = 0x20000101

// startEcho serves echoProg v1 on 127.0.0.1 (UDP) until the test ends and
// returns its port.
func startEcho(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 9000)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			var h rpc.CallHeader
			args, err := rpc.ParseCall(buf[:n], &h)
			if err != nil || h.Prog != echoProg {
				continue
			}
			out := rpc.AppendAccepted(nil, h.XID, rpc.Success)
			out = append(out, args...)
			c.WriteToUDPAddrPort(out, from)
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// register sets echoProg v1 udp at port through the local socket (v3 SET).
func register(t *testing.T, port int) {
	t.Helper()
	cl, err := rpc.Dial("unix", "/run/rpcbind.sock", rpc.ClientOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	uaddr := fmt.Sprintf("127.0.0.1.%d.%d", port>>8, port&255)
	res, err := cl.Call(context.Background(), pmap.Prog, 3, uint32(pmap.RPCBProcSet), nil,
		pmap.AppendRPCB(nil, echoProg, 1, "udp", uaddr, ""))
	if err != nil || len(res) < 4 || binary.BigEndian.Uint32(res) != 1 {
		t.Fatalf("SET echo service: %x, %v", res, err)
	}
}

// callit sends one forwarding call to 127.0.0.1:111 from a fresh UDP socket
// and returns the reply's results and the address the reply came from.
func callit(t *testing.T, xid, vers, proc uint32, args []byte) ([]byte, netip.AddrPort, error) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := rpc.AppendCall(nil, xid, pmap.Prog, vers, proc, nil)
	msg = append(msg, args...)
	if _, err := c.WriteToUDPAddrPort(msg, netip.MustParseAddrPort("127.0.0.1:111")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 9000)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return nil, from, err
	}
	res, err := rpc.ParseReply(buf[:n], xid)
	return res, from, err
}

// TestRemoteCalls: with -r, CALLIT (v2, v3), BCAST (v4) and INDIRECT reach a
// registered UDP service and carry its results back with the port (v2) or
// the merged address (v3/v4), as the reference does. The reference replies
// from its forwarding socket's random port; ours from port 111 (spec §10).
func TestRemoteCalls(t *testing.T) {
	env, ok := Enter(t)
	if !ok {
		return
	}
	for _, impl := range env.Impls {
		impl.Args = append(append([]string(nil), DaemonArgs...), "-r")
		t.Run(impl.Name, func(t *testing.T) {
			d := env.Start(t, impl)
			defer d.Stop(syscall.SIGTERM)
			port := startEcho(t)
			register(t, port)
			payload := xdr.AppendString(nil, "hello, forwarder")
			args := (&pmap.CallArgs{Prog: echoProg, Vers: 1, Proc: 1, Args: payload}).AppendXDR(nil)
			wantAddr := fmt.Sprintf("127.0.0.1.%d.%d", port>>8, port&255)

			for i, c := range []struct {
				vers, proc uint32
			}{{2, 5}, {3, 5}, {4, 5}, {4, 10}} {
				res, from, err := callit(t, 0x7e570000+uint32(i), c.vers, c.proc, args)
				if err != nil {
					t.Fatalf("v%d proc %d: %v", c.vers, c.proc, err)
				}
				var dec xdr.Decoder
				dec.Reset(res)
				if c.vers == 2 {
					if p := dec.Uint32(); p != uint32(port) {
						t.Errorf("v2 CALLIT port %d, want %d", p, port)
					}
				} else if a := dec.String(64); a != wantAddr {
					t.Errorf("v%d proc %d address %q, want %q", c.vers, c.proc, a, wantAddr)
				}
				if got := dec.Opaque(9000); string(got) != string(payload) || dec.Err() != nil {
					t.Errorf("v%d proc %d results %x (%v), want %x", c.vers, c.proc, got, dec.Err(), payload)
				}
				switch {
				case impl.Name == "ours" && from.Port() != 111:
					t.Errorf("ours: relayed reply came from %v, want port 111", from)
				case impl.Name != "ours" && from.Port() == 111:
					t.Errorf("reference: relayed reply came from port 111; the reference uses its forwarding socket")
				}
				t.Logf("v%d proc %d: reply from %v", c.vers, c.proc, from)
			}

			// INDIRECT to an unregistered program reports PROG_UNAVAIL;
			// CALLIT stays silent.
			un := (&pmap.CallArgs{Prog: echoProg + 1, Vers: 1, Proc: 1}).AppendXDR(nil)
			_, _, err := callit(t, 0x7e570010, 4, 10, un)
			var re *rpc.ReplyError
			if !errors.As(err, &re) || re.AcceptStat != rpc.ProgUnavail {
				t.Errorf("INDIRECT to an unregistered program: %v, want PROG_UNAVAIL", err)
			}
			if _, _, err := callit(t, 0x7e570011, 2, 5, un); err == nil {
				t.Error("CALLIT to an unregistered program was answered; the reference is silent")
			}
		})
	}
}

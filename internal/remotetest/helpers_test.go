package remotetest

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
	"github.com/openrpcbind/rpcbind/xdr"
)

// Addresses of the scenarios: TEST-NET-1 and the IPv6 documentation prefix.
var (
	v6Local  = netip.MustParsePrefix("2001:db8::1/64")
	v6Remote = netip.MustParsePrefix("2001:db8::2/64")
)

func dualStack() Options {
	return Options{ExtraLocal: []netip.Prefix{v6Local}, ExtraRemote: []netip.Prefix{v6Remote}}
}

var quick = rpc.ClientOptions{Timeout: 3 * time.Second, Retransmit: 500 * time.Millisecond}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// outcome renders a call's result: "TRUE"/"FALSE" for a bool reply,
// "AUTH_TOOWEAK" etc. for a denial, "ok" for other successes.
func outcome(res []byte, err error) string {
	var re *rpc.ReplyError
	switch {
	case errors.As(err, &re):
		if re.Stat == rpc.MsgDenied && re.RejectStat == rpc.AuthError {
			return re.AuthStat.String()
		}
		return re.Error()
	case err != nil:
		return "error: " + err.Error()
	case len(res) == 4:
		var d xdr.Decoder
		d.Reset(res)
		if d.Bool() {
			return "TRUE"
		}
		return "FALSE"
	}
	return "ok"
}

func mapping(prog, vers, prot, port uint32) []byte {
	m := pmap.Mapping{Prog: prog, Vers: vers, Prot: prot, Port: port}
	return m.AppendXDR(nil)
}

// set and unset issue SET / UNSET of (prog, 1) in version vers over c.
func set(t testing.TB, c *rpc.Client, vers, prog uint32, netid, uaddr string) string {
	var args []byte
	if vers == 2 {
		prot := uint32(pmap.IPProtoUDP)
		if netid == "tcp" {
			prot = pmap.IPProtoTCP
		}
		args = mapping(prog, 1, prot, 4000)
	} else {
		args = pmap.AppendRPCB(nil, prog, 1, netid, uaddr, "someone")
	}
	return outcome(c.Call(ctx(t), pmap.Prog, vers, uint32(pmap.PmapProcSet), nil, args))
}

func unset(t testing.TB, c *rpc.Client, vers, prog uint32, netid string) string {
	return unsetPV(t, c, vers, prog, 1, netid)
}

// unsetPV is UNSET of (prog, pv).
func unsetPV(t testing.TB, c *rpc.Client, vers, prog, pv uint32, netid string) string {
	var args []byte
	if vers == 2 {
		args = mapping(prog, pv, 0, 0)
	} else {
		args = pmap.AppendRPCB(nil, prog, pv, netid, "", "someone")
	}
	return outcome(c.Call(ctx(t), pmap.Prog, vers, uint32(pmap.PmapProcUnset), nil, args))
}

func getport(t testing.TB, c *rpc.Client) string {
	res, err := c.Call(ctx(t), pmap.Prog, 2, uint32(pmap.PmapProcGetPort), nil, mapping(pmap.Prog, 2, pmap.IPProtoTCP, 0))
	if err == nil && len(res) == 4 {
		return "port " + itoa(int(uint32(res[0])<<24|uint32(res[1])<<16|uint32(res[2])<<8|uint32(res[3])))
	}
	return outcome(res, err)
}

func null(t testing.TB, c *rpc.Client) string {
	return outcome(c.Call(ctx(t), pmap.Prog, 2, 0, nil, nil))
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// flood sends n calls of (vers, proc) with no arguments over c, paced over
// about d, and counts the replies that arrive until 500 ms after the last
// call. Replies are matched to calls by XID.
func flood(t testing.TB, c *net.UDPConn, vers, proc uint32, n int, d time.Duration) (replies int, bytes int64) {
	t.Helper()
	const base = 0x5a000000
	var got, nbytes atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			m, err := c.Read(buf)
			if err != nil {
				return
			}
			if m >= 4 {
				x := uint32(buf[0])<<24 | uint32(buf[1])<<16 | uint32(buf[2])<<8 | uint32(buf[3])
				if x-base < uint32(n) {
					got.Add(1)
					nbytes.Add(int64(m))
				}
			}
		}
	}()
	gap := d / time.Duration(n)
	start := time.Now()
	var out []byte
	for i := 0; i < n; i++ {
		out = rpc.AppendCall(out[:0], base+uint32(i), pmap.Prog, vers, proc, nil)
		if _, err := c.Write(out); err != nil {
			t.Fatalf("flood: write: %v", err)
		}
		if next := start.Add(time.Duration(i+1) * gap); time.Until(next) > 0 {
			time.Sleep(time.Until(next))
		}
	}
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	<-done
	return int(got.Load()), nbytes.Load()
}

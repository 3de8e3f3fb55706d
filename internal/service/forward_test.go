package service

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/access"
	"github.com/openrpcbind/rpcbind/internal/forward"
	"github.com/openrpcbind/rpcbind/internal/registry"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/internal/testenv"
	"github.com/openrpcbind/rpcbind/internal/testvec"
	"github.com/openrpcbind/rpcbind/pmap"
	"github.com/openrpcbind/rpcbind/xdr"
)

// TestForwarding runs CALLIT and INDIRECT through a real forwarder to a
// service on a loopback port, with the caller on another loopback socket
// (spec §1.7 with -r). Deadlines only bound a hung test.
func TestForwarding(t *testing.T) {
	svcConn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		testenv.Missing(t, "loopback 127.0.0.1 (%v)", err)
	}
	defer svcConn.Close()
	port := svcConn.LocalAddr().(*net.UDPAddr).Port
	client, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	fwd := forward.New(forward.Config{})
	defer fwd.Close()
	tab := registry.New(captureSelf())
	tab.Set(registry.Entry{Prog: 400000, Vers: 1, Netid: "udp", Addr: "0.0.0.0." + itoa(port>>8) + "." + itoa(port&0xff), Owner: "superuser"})
	s := New(Config{Table: tab, Ifaces: captureIfaces(), Forwarder: fwd})
	caller := &access.Caller{Netid: "udp", Addr: client.LocalAddr().(*net.UDPAddr).AddrPort(), UID: -1}

	sys := rpc.AuthSysParams{Stamp: 1, MachineName: []byte("tvprobe"), UID: 1000, GID: 1000, NGIDs: 1}
	sys.GIDs[0] = 24
	cred := sys.OpaqueAuth()
	args := (&pmap.CallArgs{Prog: 400000, Vers: 1, Proc: 7, Args: []byte{0xde, 0xad, 0xbe}}).AppendXDR(nil)
	buf := make([]byte, 65536)
	for _, tc := range []struct {
		name       string
		vers, proc uint32
		cred       *rpc.OpaqueAuth
		stat       rpc.AcceptStat // the service's answer
		want       func(xid uint32) []byte
	}{
		{"v2 CALLIT", 2, 5, nil, rpc.Success, func(xid uint32) []byte {
			return pmap.AppendCallResult(rpc.AppendAccepted(nil, xid, rpc.Success), uint32(port), []byte{1, 2, 3, 4})
		}},
		{"v4 INDIRECT AUTH_SYS", 4, 10, &cred, rpc.Success, func(xid uint32) []byte {
			return pmap.AppendRmtCallRes(rpc.AppendAccepted(nil, xid, rpc.Success), "127.0.0.1."+itoa(port>>8)+"."+itoa(port&0xff), []byte{1, 2, 3, 4})
		}},
		{"v4 INDIRECT failing service", 4, 10, nil, rpc.ProcUnavail, func(xid uint32) []byte {
			return rpc.AppendAccepted(nil, xid, rpc.SystemErr)
		}},
	} {
		xid := uint32(0x7000 + tc.proc + tc.vers<<8)
		msg := append(rpc.AppendCall(nil, xid, pmap.Prog, tc.vers, tc.proc, tc.cred), args...)
		if out, send := s.ServeRPC(nil, msg, caller); send {
			t.Fatalf("%s: immediate reply %s", tc.name, testvec.Hex(out))
		}
		// A duplicate while in flight is dropped.
		if _, send := s.ServeRPC(nil, msg, caller); send {
			t.Fatalf("%s: reply to duplicate", tc.name)
		}
		svcConn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := svcConn.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("%s: service got nothing: %v", tc.name, err)
		}
		var h rpc.CallHeader
		fargs, err := rpc.ParseCall(buf[:n], &h)
		if err != nil || h.Prog != 400000 || h.Vers != 1 || h.Proc != 7 || !bytes.Equal(fargs, []byte{0xde, 0xad, 0xbe, 0}) {
			t.Fatalf("%s: forwarded call %s: %v", tc.name, testvec.Hex(buf[:n]), err)
		}
		if h.XID%forward.NumSlots == 0 && h.XID == 0 {
			t.Errorf("zero forwarded XID")
		}
		wantFlavor := rpc.AuthNone
		if tc.cred != nil {
			wantFlavor = rpc.AuthSys
			var p rpc.AuthSysParams
			if err := p.Decode(h.Cred.Body); err != nil || p.UID != 1000 || string(p.MachineName) != "tvprobe" || p.NGIDs != 1 || p.GIDs[0] != 24 {
				t.Errorf("%s: AUTH_SYS not re-created: %+v %v", tc.name, p, err)
			}
		}
		if h.Cred.Flavor != wantFlavor {
			t.Errorf("%s: forwarded flavor %v, want %v", tc.name, h.Cred.Flavor, wantFlavor)
		}
		if from.Addr() != netip.AddrFrom4([4]byte{127, 0, 0, 1}) {
			t.Errorf("%s: forwarded from %v, want loopback", tc.name, from)
		}
		rep := rpc.AppendAccepted(nil, h.XID, tc.stat)
		if tc.stat == rpc.Success {
			rep = xdr.AppendUint32(rep, 0x01020304)
		}
		svcConn.WriteToUDPAddrPort(rep, from)
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, rfrom, err := client.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("%s: caller got no reply: %v", tc.name, err)
		}
		if want := tc.want(xid); !bytes.Equal(buf[:n], want) {
			t.Errorf("%s:\n got  %s\n want %s", tc.name, testvec.Hex(buf[:n]), testvec.Hex(want))
		}
		if rfrom != from {
			t.Errorf("%s: reply from %v, want the forwarding socket %v", tc.name, rfrom, from)
		}
	}
	// Statistics: three calls of (400000, 1, 7) on udp recorded per version.
	st := s.Stats()
	if r := st[2].Rmt; len(r) != 1 || r[0].Success != 4 || r[0].Indirect != 4 {
		t.Errorf("v4 rmtinfo = %+v, want success 4 (with duplicates), indirect 1+3", r)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

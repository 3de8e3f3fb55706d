package hardening

import (
	"encoding/binary"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/e2e"
	"github.com/openrpcbind/rpcbind/internal/nstest"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
)

// bombs are calls whose arguments claim 4 GiB (0xffffffff) or 2 GiB
// strings, opaques and netbufs (CVE-2017-8779 "rpcbomb" sent such a
// netbuf to rpcbind's UADDR2TADDR/TADDR2UADDR and it allocated it).
func bombs() [][]byte {
	huge := []byte{0xff, 0xff, 0xff, 0xff}
	big := []byte{0x7f, 0xff, 0xff, 0xfc}
	call := func(vers uint32, proc pmap.Proc, args ...[]byte) []byte {
		b := rpc.AppendCall(nil, 0, pmap.Prog, vers, uint32(proc), nil)
		for _, a := range args {
			b = append(b, a...)
		}
		return append(b, make([]byte, 64)...) // a little of the promised data
	}
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	credBomb := rpc.AppendCall(nil, 0, pmap.Prog, 2, 0, nil)
	binary.BigEndian.PutUint32(credBomb[28:], 0xffffffff) // cred body length
	return [][]byte{
		call(3, pmap.RPCBProcSet, u32(1), u32(1), huge),                               // r_netid
		call(4, pmap.RPCBProcGetAddr, u32(1), u32(1), u32(3), []byte("tcp\x00"), big), // r_addr
		call(3, pmap.RPCBProcUaddr2Taddr, huge),                                       // the uaddr string
		call(3, pmap.RPCBProcTaddr2Uaddr, huge, huge),                                 // netbuf maxlen, len (the CVE)
		call(4, pmap.RPCBProcTaddr2Uaddr, u32(16), big),                               // netbuf len
		call(2, pmap.PmapProcCallit, u32(1), u32(1), u32(0), huge),                    // call_args args
		call(4, pmap.RPCBProcIndirect, u32(1), u32(1), u32(0), big),                   // rpcb_rmtcallargs args
		call(4, pmap.RPCBProcGetAddrList, u32(1), u32(1), huge),                       // r_netid
		credBomb,
	}
}

// TestRPCBomb: 100,000 calls claiming 4 GiB strings/opaques/netbufs, half
// over UDP and half over TCP (pipelined records, plus records whose mark
// claims 2 GiB), in 10 batches. After every batch the daemon answers a
// GETPORT over UDP and TCP; its resident set grows by less than 4 MiB.
func TestRPCBomb(t *testing.T) {
	if !nstest.Enter(t) {
		return
	}
	// The e2e binary carries the race detector under -race (its shadow
	// memory grows with every goroutine): measure a plain build, as shipped.
	bin := plainBuild(t)
	nstest.FreshRun(t)
	d := nstest.StartDaemon(t, bin, e2e.DaemonArgs...)
	pid := d.Cmd.Process.Pid
	// Warm up: every code path once, so the baseline includes them.
	msgs := bombs()
	sendBatch(t, msgs, 2000)
	time.Sleep(200 * time.Millisecond)
	base := vmRSS(t, pid)
	peak := base
	const batches, perBatch = 10, 10000
	start := time.Now()
	for b := 0; b < batches; b++ {
		sendBatch(t, msgs, perBatch)
		for _, network := range []string{"udp", "tcp"} {
			if port, err := getport(t, network); err != nil || port != 111 {
				t.Fatalf("batch %d: GETPORT over %s: %d, %v", b, network, port, err)
			}
		}
		if r := vmRSS(t, pid); r > peak {
			peak = r
		}
	}
	t.Logf("rpcbomb: %d calls in %v; VmRSS %d KiB before, peak %d KiB (+%d KiB); GETPORT answered after each of %d batches",
		batches*perBatch, time.Since(start).Round(time.Millisecond), base, peak, peak-base, batches)
	if peak-base >= 4096 {
		t.Errorf("resident set grew by %d KiB under the rpcbomb (limit 4096)", peak-base)
	}
	if d.Exited() {
		t.Fatal("the daemon exited")
	}
}

// sendBatch sends n bombs: n/2 over UDP (fire and forget, replies
// drained), n/2 over TCP as pipelined records on a few connections, and
// one record in 50 on its own connection with a mark claiming 2 GiB.
func sendBatch(t *testing.T, msgs [][]byte, n int) {
	t.Helper()
	u, err := net.Dial("udp", "127.0.0.1:111")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	go io.Copy(io.Discard, u)
	for i := 0; i < n/2; i++ {
		m := msgs[i%len(msgs)]
		binary.BigEndian.PutUint32(m, uint32(i))
		if _, err := u.Write(m); err != nil {
			t.Fatal(err)
		}
		if i%256 == 255 {
			time.Sleep(time.Millisecond) // stay within the socket buffers
		}
	}
	const conns = 4
	per := n / 2 / conns
	done := make(chan error, conns)
	for c := 0; c < conns; c++ {
		go func() {
			tc, err := net.Dial("tcp", "127.0.0.1:111")
			if err != nil {
				done <- err
				return
			}
			defer tc.Close()
			drained := make(chan struct{})
			go func() { io.Copy(io.Discard, tc); close(drained) }()
			var buf []byte
			for i := 0; i < per; i++ {
				if i%50 == 49 {
					bigRecord()
					continue
				}
				m := msgs[(i+c)%len(msgs)]
				buf = binary.BigEndian.AppendUint32(buf, 0x80000000|uint32(len(m)))
				buf = append(buf, m...)
				if len(buf) > 32<<10 {
					if _, err := tc.Write(buf); err != nil {
						done <- err
						return
					}
					buf = buf[:0]
				}
			}
			if _, err := tc.Write(buf); err != nil {
				done <- err
				return
			}
			tc.(*net.TCPConn).CloseWrite()
			<-drained
			done <- nil
		}()
	}
	for c := 0; c < conns; c++ {
		if err := <-done; err != nil {
			t.Fatalf("tcp bomb: %v", err)
		}
	}
}

// bigRecord opens a connection and sends a record mark claiming 2 GiB and
// a little data; the server closes it (record over MaxRecord).
func bigRecord() {
	c, err := net.Dial("tcp", "127.0.0.1:111")
	if err != nil {
		return
	}
	defer c.Close()
	c.Write(append([]byte{0xff, 0xff, 0xff, 0xff}, make([]byte, 1024)...))
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	io.Copy(io.Discard, c)
}

// plainBuild builds ./cmd/rpcbind as make build does (no race detector).
func plainBuild(t *testing.T) string {
	t.Helper()
	root, err := e2e.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	bin := filepath.Join(t.TempDir(), "rpcbind")
	cmd := exec.Command(goTool, "build", "-o", bin, "./cmd/rpcbind")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

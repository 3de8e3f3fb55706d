package main

import (
	"bytes"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/xdr"
)

// fakeRPCBind is an in-test rpcbind on an ephemeral TCP port, the same UDP
// port and a unix socket in t.TempDir(). answer returns the whole reply
// message for a call (nil: no reply); raw, when set, returns the bytes to
// write on a stream instead (record marks included).
type fakeRPCBind struct {
	answer func(h *rpc.CallHeader, args []byte) []byte
	raw    func(h *rpc.CallHeader) []byte

	socket string
	port   uint16
	mu     sync.Mutex
	calls  []rpc.CallHeader
}

func startFake(t *testing.T, f *fakeRPCBind) *fakeRPCBind {
	t.Helper()
	f.socket = filepath.Join(t.TempDir(), "rpcbind.sock")
	ul, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	tl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.port = uint16(tl.Addr().(*net.TCPAddr).Port)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(int(f.port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ul.Close(); tl.Close(); pc.Close() })
	for _, l := range []net.Listener{ul, tl} {
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go f.serveStream(c)
			}
		}()
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var h rpc.CallHeader
			args, err := rpc.ParseCall(buf[:n], &h)
			if err != nil {
				continue
			}
			f.record(h)
			if out := f.answer(&h, args); out != nil {
				pc.WriteTo(out, from)
			}
		}
	}()
	return f
}

func (f *fakeRPCBind) record(h rpc.CallHeader) {
	f.mu.Lock()
	f.calls = append(f.calls, rpc.CallHeader{XID: h.XID, Prog: h.Prog, Vers: h.Vers, Proc: h.Proc})
	f.mu.Unlock()
}

func (f *fakeRPCBind) serveStream(c net.Conn) {
	defer c.Close()
	rr := rpc.NewRecordReader(c, rpc.MaxRecord)
	for {
		rec, err := rr.Next()
		if err != nil {
			return
		}
		var h rpc.CallHeader
		args, err := rpc.ParseCall(rec, &h)
		if err != nil {
			return
		}
		f.record(h)
		if f.raw != nil {
			if out := f.raw(&h); out != nil {
				if len(out) == 0 {
					return // close without a reply
				}
				c.Write(out)
				continue
			}
		}
		out := f.answer(&h, args)
		if out == nil {
			continue
		}
		b, start := rpc.BeginRecord(nil)
		b = append(b, out...)
		rpc.EndRecord(b, start)
		c.Write(b)
	}
}

// success returns a SUCCESS reply to h carrying results.
func success(h *rpc.CallHeader, results []byte) []byte {
	return append(rpc.AppendAccepted(nil, h.XID, rpc.Success), results...)
}

// testConfig points rpcinfo at f with short timeouts.
func testConfig(f *fakeRPCBind, rpcFile string) Config {
	cfg := DefaultConfig()
	cfg.Socket = f.socket
	cfg.Port = f.port
	cfg.RPCFile = rpcFile
	cfg.DumpTimeout = 300 * time.Millisecond
	cfg.PingTimeout = 300 * time.Millisecond
	cfg.LookupTimeout = time.Second // a large hostile reply under -race on a loaded machine took over 300 ms
	cfg.ConnectTimeout = 2 * time.Second
	cfg.BcastInit = 100 * time.Millisecond
	cfg.BcastWait = 200 * time.Millisecond
	cfg.BcastLimit = time.Second
	return cfg
}

type result struct {
	stdout, stderr string
	code           int
}

func runWith(cfg Config, args ...string) result {
	var out, errb bytes.Buffer
	code := run(append([]string{"rpcinfo"}, args...), &out, &errb, cfg)
	return result{out.String(), errb.String(), code}
}

// words appends XDR words.
func words(ws ...uint32) []byte {
	var b []byte
	for _, w := range ws {
		b = xdr.AppendUint32(b, w)
	}
	return b
}

package main

import (
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
)

// Hostile rpcbind replies: each must end in a clear libtirpc-style error
// and exit status 1, never a crash, a hang, or memory sized from the wire.
func TestHostileReplies(t *testing.T) {
	huge := words(
		1,         // value follows
		100000, 4, // r_prog, r_vers
		0xffffffff, // r_netid length: 4 GiB claimed
	)
	truncated := words(
		1,         // value follows
		100000, 4, // r_prog, r_vers
		3, // r_netid length
	)
	truncated = append(truncated, 't', 'c', 'p', 0) // then the list just stops
	manyEntries := func() []byte {
		// pmap.MaxEntryListLen+1 minimal rpcb_entry elements: over the cap.
		var b []byte
		for i := 0; i <= pmap.MaxEntryListLen; i++ {
			b = append(b, words(1, 0, 0, 1, 0, 0)...)
		}
		return append(b, words(0)...)
	}()
	const cantDecode = "rpcinfo: can't contact rpcbind: : RPC: Can't decode result\n"
	for _, tc := range []struct {
		name    string
		args    []string
		answer  func(h *rpc.CallHeader, args []byte) []byte
		raw     func(h *rpc.CallHeader) []byte
		stderr  string
		code    int
		maxHeap uint64 // bytes the run may allocate in total
	}{
		{
			name:    "dump v3 string length 0xffffffff (local socket)",
			args:    nil,
			answer:  func(h *rpc.CallHeader, _ []byte) []byte { return success(h, huge) },
			stderr:  cantDecode,
			code:    1,
			maxHeap: 8 << 20,
		},
		{
			name:   "dump v3 truncated list (host over tcp)",
			args:   []string{"-s", "127.0.0.1"},
			answer: func(h *rpc.CallHeader, _ []byte) []byte { return success(h, truncated) },
			stderr: cantDecode,
			code:   1,
		},
		{
			name:   "getaddrlist over the list cap",
			args:   []string{"-l", "127.0.0.1", "100000", "4"},
			answer: func(h *rpc.CallHeader, _ []byte) []byte { return success(h, manyEntries) },
			stderr: cantDecode,
			code:   1,
		},
		{
			name: "getstat addrlist count 0xffffffff netid",
			args: []string{"-m"},
			answer: func(h *rpc.CallHeader, _ []byte) []byte {
				b := make([]byte, 15*4) // v2 counters, setinfo, unsetinfo
				b = append(b, words(1, 100000, 2, 1, 0, 0xffffffff)...)
				return success(h, b)
			},
			stderr:  cantDecode,
			code:    1,
			maxHeap: 8 << 20,
		},
		{
			name:   "wrong xid only: times out",
			args:   []string{"-p"},
			answer: func(h *rpc.CallHeader, _ []byte) []byte { return success(&rpc.CallHeader{XID: h.XID + 1}, words(0)) },
			stderr: "rpcinfo: can't contact portmapper: RPC: Timed out\n",
			code:   1,
		},
		{
			name: "record mark claims 2 GiB",
			args: nil,
			raw: func(h *rpc.CallHeader) []byte {
				return append(words(0xffffffff), rpc.AppendAccepted(nil, h.XID, rpc.Success)...)
			},
			stderr:  cantDecode,
			code:    1,
			maxHeap: 8 << 20,
		},
		{
			name:   "reply header truncated",
			args:   nil,
			answer: func(h *rpc.CallHeader, _ []byte) []byte { return words(h.XID, 1, 0) },
			stderr: cantDecode,
			code:   1,
		},
		{
			name:   "connection closed without a reply",
			args:   []string{"-m"},
			raw:    func(h *rpc.CallHeader) []byte { return []byte{} }, // close at once
			answer: func(h *rpc.CallHeader, _ []byte) []byte { return nil },
			stderr: "rpcinfo: can't contact rpcbind: : RPC: Unable to receive; errno = Connection reset by peer\n",
			code:   1,
		},
		{
			name: "udp ping: wrong xid only",
			args: []string{"-a", "", "-T", "udp", "100000", "2"},
			answer: func(h *rpc.CallHeader, _ []byte) []byte {
				return rpc.AppendAccepted(nil, h.XID^0xdead, rpc.Success)
			},
			stderr: "rpcinfo: RPC: Timed out\n",
			code:   1,
		},
		{
			name: "udp ping: prog mismatch with a short body",
			args: []string{"-a", "", "-T", "udp", "100000", "2"},
			answer: func(h *rpc.CallHeader, _ []byte) []byte {
				return rpc.AppendAccepted(nil, h.XID, rpc.ProgMismatch) // low and high missing
			},
			stderr: "rpcinfo: RPC: Can't decode result\n",
			code:   1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t, &fakeRPCBind{answer: tc.answer, raw: tc.raw})
			args := append([]string(nil), tc.args...)
			for i, a := range args {
				if a == "" && i > 0 && args[i-1] == "-a" {
					args[i] = pmapUaddr(f.port)
				}
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			r := runWith(testConfig(f, "/nonexistent"), args...)
			runtime.ReadMemStats(&after)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tc.code, r.stderr)
			}
			if tc.stderr != "" && r.stderr != tc.stderr {
				t.Errorf("stderr %q, want %q", r.stderr, tc.stderr)
			}
			if tc.stderr == "" && !strings.HasPrefix(r.stderr, "rpcinfo: can't contact rpcbind: : RPC: ") {
				t.Errorf("stderr %q: want a clear RPC error", r.stderr)
			}
			if tc.maxHeap != 0 && after.TotalAlloc-before.TotalAlloc > tc.maxHeap {
				t.Errorf("allocated %d bytes, want at most %d", after.TotalAlloc-before.TotalAlloc, tc.maxHeap)
			}
		})
	}
}

func pmapUaddr(port uint16) string {
	return "127.0.0.1." + itoa(int(port>>8)) + "." + itoa(int(port&0xff))
}

func itoa(n int) string { return strconv.Itoa(n) }

// The CVE-2026-16277/16461 shapes: a -s program with thousands of versions
// and -l entries with 9000-byte fields. The C rpcinfo overflows fixed stack
// buffers; we print the long lines in full.
func TestHostileLongFields(t *testing.T) {
	long := strings.Repeat("x", pmap.MaxString)
	var dump []byte
	for v := uint32(0); v < 3000; v++ {
		dump = append(dump, words(1)...)
		dump = pmap.AppendRPCB(dump, 300000, v, "tcp", "0.0.0.0.3.232", "superuser")
	}
	dump = append(dump, words(0)...)
	list := append(words(1), (&pmap.Entry{Maddr: long, Netid: "tcp", Semantics: 3, Protofmly: long, Proto: long}).AppendXDR(nil)...)
	list = append(list, words(0)...)
	f := startFake(t, &fakeRPCBind{answer: func(h *rpc.CallHeader, _ []byte) []byte {
		if pmap.Proc(h.Proc) == pmap.RPCBProcGetAddrList {
			return success(h, list)
		}
		return success(h, dump)
	}})
	cfg := testConfig(f, "/nonexistent")
	r := runWith(cfg, "-s")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("-s: exit %d stderr %q", r.code, r.stderr)
	}
	lines := strings.Split(r.stdout, "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "    300000  2999,2998,") || !strings.Contains(lines[1], ",1,0tcp") {
		t.Errorf("-s: unexpected output %.200q", r.stdout)
	}
	r = runWith(cfg, "-l", "127.0.0.1", "300000", "1")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("-l: exit %d stderr %q", r.code, r.stderr)
	}
	want := "    300000  1    " + long + "/" + long + "/cots_ord " + long + " -            \n"
	if r.stdout != hdrAddrList+want {
		t.Errorf("-l: output of %d bytes, want %d", len(r.stdout), len(hdrAddrList+want))
	}
}

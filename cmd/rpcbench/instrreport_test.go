package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func near(a, b, eps float64) bool { return math.Abs(a-b) <= eps }

// TestFitLine: the slope and intercept of a least-squares line, the
// largest residual and the residual per call of the smallest run; fewer
// than two distinct call counts is an error, never a slope.
func TestFitLine(t *testing.T) {
	for _, tc := range []struct {
		name               string
		n, y               []float64
		slope, icpt, resid float64
		noise              float64
		err                bool
	}{
		{name: "exact", n: []float64{1000, 2000, 3000}, y: []float64{6e6 + 7290e3, 6e6 + 2*7290e3, 6e6 + 3*7290e3}, slope: 7290, icpt: 6e6},
		{name: "noisy middle", n: []float64{100, 200, 300}, y: []float64{1000, 5000, 7000}, slope: 30, resid: 2000.0 / 3, noise: 2000.0 / 300},
		{name: "one point", n: []float64{1000}, y: []float64{5}, err: true},
		{name: "same n", n: []float64{1000, 1000, 1000}, y: []float64{5, 6, 7}, err: true},
		{name: "lengths differ", n: []float64{1, 2}, y: []float64{5}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := fitLine(tc.n, tc.y)
			if tc.err {
				if err == nil {
					t.Fatalf("fitLine = %+v, want an error", f)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !near(f.slope, tc.slope, 1e-6) || !near(f.maxResid, tc.resid, 1e-6) || !near(f.perCallNoise, tc.noise, 1e-6) {
				t.Errorf("fit = %+v, want slope %v resid %v noise %v", f, tc.slope, tc.resid, tc.noise)
			}
			if tc.name == "exact" && !near(f.intercept, tc.icpt, 1e-3) {
				t.Errorf("intercept %v, want %v", f.intercept, tc.icpt)
			}
		})
	}
}

// TestFitLineNoisyMiddle pins the arithmetic of the noisy case: the mean
// point is (200, 4333.3), the slope (7000-1000)/200 = 30.
func TestFitLineNoisyMiddle(t *testing.T) {
	f, err := fitLine([]float64{100, 200, 300}, []float64{1000, 5000, 7000})
	if err != nil {
		t.Fatal(err)
	}
	if !near(f.intercept, 13000.0/3-6000, 1e-9) {
		t.Errorf("intercept %v", f.intercept)
	}
	// Residuals: 1000-(-1666.7+3000)=-333.3, 5000-4333.3=+666.7, 7000-7333.3=-333.3.
	if !near(f.maxResid, 2000.0/3, 1e-9) || !near(f.perCallNoise, 2000.0/300, 1e-9) {
		t.Errorf("resid %v noise %v", f.maxResid, f.perCallNoise)
	}
}

// TestVerdict: a target is met only when every limit it sets holds; a
// missing figure is "no data", never met; a row without a target says
// nothing.
func TestVerdict(t *testing.T) {
	both := &instrTarget{workload: "getport-udp", gap: "1ms", maxInstr: 5000, maxSysc: 3}
	instrOnly := &instrTarget{workload: "x", gap: "1ms", maxInstr: 5000}
	f := func(s float64) *fit { return &fit{slope: s} }
	for _, tc := range []struct {
		name        string
		t           *instrTarget
		instr, sysc *fit
		want        string
	}{
		{"met", both, f(4999), f(3), "met"},
		{"at the limit", both, f(5000), f(3), "met"},
		{"instructions over", both, f(5001), f(2), "missed (instructions)"},
		{"syscalls over", both, f(4000), f(3.01), "missed (syscalls)"},
		{"both over", both, f(7290), f(5), "missed (instructions, syscalls)"},
		{"no instructions", both, nil, f(2), "no data"},
		{"no syscalls", both, f(10), nil, "no data"},
		{"no syscall limit", instrOnly, f(10), nil, "met"},
		{"no target", nil, f(1e9), f(1e9), ""},
	} {
		if got := verdict(tc.t, tc.instr, tc.sysc); got != tc.want {
			t.Errorf("%s: verdict = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestTargetsOfIssue13 pins the issue's targets: GETPORT UDP ≤ 5,000
// instructions, GETADDR UDP ≤ 6,000, at most 3 syscalls, with calls 1 ms
// apart, and none back to back.
func TestTargetsOfIssue13(t *testing.T) {
	for _, tc := range []struct {
		w, g        string
		instr, sysc float64
	}{
		{"getport-udp", "1ms", 5000, 3},
		{"getaddr-udp", "1ms", 6000, 3},
	} {
		tg := targetFor(tc.w, tc.g)
		if tg == nil || tg.maxInstr != tc.instr || tg.maxSysc != tc.sysc {
			t.Errorf("target %s %s = %+v", tc.w, tc.g, tg)
		}
	}
	if tg := targetFor("getport-udp", "b2b"); tg != nil {
		t.Errorf("back to back has a target: %+v", tg)
	}
}

func TestGroupDigits(t *testing.T) {
	for x, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 7290.4: "7,290", 15074.6: "15,075", 1234567: "1,234,567", -1500: "-1,500"} {
		if got := groupDigits(x); got != want {
			t.Errorf("groupDigits(%v) = %q, want %q", x, got, want)
		}
	}
}

// rawLines: ours misses GETPORT UDP on both counts, meets GETADDR UDP;
// the reference has no target.
const rawLines = `# bench-instructions header
daemon=ours workload=getport-udp gap=1ms tool=cachegrind n=1000 ir=13290000 wall_ms=1200 cpu_ms=300 rtt_p50_us=200
daemon=ours workload=getport-udp gap=1ms tool=cachegrind n=2000 ir=20580000 wall_ms=2400 cpu_ms=600 rtt_p50_us=210
daemon=ours workload=getport-udp gap=1ms tool=cachegrind n=3000 ir=27870000 wall_ms=3600 cpu_ms=900 rtt_p50_us=220
daemon=reference workload=getport-udp gap=1ms tool=cachegrind n=1000 ir=21074000
daemon=reference workload=getport-udp gap=1ms tool=cachegrind n=2000 ir=36148000
daemon=reference workload=getport-udp gap=1ms tool=cachegrind n=3000 ir=51222000
daemon=ours workload=getport-udp gap=1ms tool=syscalls n=1000 syscalls=5010 by=recvmmsg:2000,epoll_pwait:2000,sendmmsg:1000,futex:10
daemon=ours workload=getport-udp gap=1ms tool=syscalls n=2000 syscalls=10010 by=recvmmsg:4000,epoll_pwait:4000,sendmmsg:2000,futex:10
daemon=ours workload=getport-udp gap=1ms tool=syscalls n=3000 syscalls=15010 by=recvmmsg:6000,epoll_pwait:6000,sendmmsg:3000,futex:10
daemon=ours workload=getaddr-udp gap=1ms tool=cachegrind n=1000 ir=11000000
daemon=ours workload=getaddr-udp gap=1ms tool=cachegrind n=2000 ir=16000000
daemon=ours workload=getaddr-udp gap=1ms tool=cachegrind n=3000 ir=21000000
daemon=ours workload=getaddr-udp gap=1ms tool=syscalls n=1000 syscalls=3000 by=recvmmsg:1000,epoll_pwait:1000,sendmmsg:1000
daemon=ours workload=getaddr-udp gap=1ms tool=syscalls n=2000 syscalls=6000 by=recvmmsg:2000,epoll_pwait:2000,sendmmsg:2000
daemon=ours workload=getaddr-udp gap=1ms tool=syscalls n=3000 syscalls=9000 by=recvmmsg:3000,epoll_pwait:3000,sendmmsg:3000
daemon=ours workload=getport-udp gap=b2b tool=cachegrind n=2000 ir=14160000
daemon=ours workload=getport-udp gap=b2b tool=cachegrind n=4000 ir=22320000
daemon=ours workload=getport-udp gap=b2b tool=cachegrind n=6000 ir=30480000
daemon=ours workload=getport-udp gap=1ms tool=profile kind=group name=runtime-sched-netpoll ir_per_call=4600
daemon=ours workload=getport-udp gap=1ms tool=profile kind=fn name=runtime.findRunnable ir_per_call=900
`

// TestInstrReport: the table has a row per workload × gap with the slopes,
// the ratio, the target and the verdict; the syscall, idle and profile
// sections follow.
func TestInstrReport(t *testing.T) {
	var out bytes.Buffer
	if err := instrReport(strings.NewReader(rawLines), &out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"| getport-udp | 1ms | 7,290 ±0 | 15,074 ±0 | 0.48× | 5.00 ±0.00 | – | – | ≤ 5,000 instr, ≤ 3 syscalls | missed (instructions, syscalls) |",
		"| getaddr-udp | 1ms | 5,000 ±0 | – | – | 3.00 ±0.00 | – | – | ≤ 6,000 instr, ≤ 3 syscalls | met |",
		"| getport-udp | b2b | 4,080 ±0 | – | – | – | – | – |  |  |",
		"ours      getport-udp      1ms  epoll_pwait 2.00, recvmmsg 2.00, sendmmsg 1.00",
		"ours      getport-udp      1ms  busy ≤ 25%, round trip p50 ≤ 220 µs",
		"groups: runtime-sched-netpoll 4,600",
		"top functions: runtime.findRunnable 900",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "futex") {
		t.Errorf("a syscall that does not grow with the calls is listed:\n%s", s)
	}
	if i, j := strings.Index(s, "| getport-udp | 1ms"), strings.Index(s, "| getaddr-udp | 1ms"); i < 0 || j < i {
		t.Errorf("rows not in the order of the input:\n%s", s)
	}
}

// TestInstrReportEmpty: no measurements is an error, not an empty table.
func TestInstrReportEmpty(t *testing.T) {
	if err := instrReport(strings.NewReader("# only a header\n"), &bytes.Buffer{}); err == nil {
		t.Error("instrReport of no lines succeeded")
	}
}

// TestInstrReportOnePoint: a cell with a single run has no slope and its
// target is "no data".
func TestInstrReportOnePoint(t *testing.T) {
	in := "daemon=ours workload=getport-udp gap=1ms tool=cachegrind n=1000 ir=13290000\n" +
		"daemon=ours workload=getport-udp gap=1ms tool=syscalls n=1000 syscalls=5000 by=read:5000\n"
	var out bytes.Buffer
	if err := instrReport(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "| getport-udp | 1ms | – | – | – | – | – | – | ≤ 5,000 instr, ≤ 3 syscalls | no data |") {
		t.Errorf("report:\n%s", out.String())
	}
}

const cachegrindOut = `desc: I1 cache:         32768 B, 64 B, 8-way associative
cmd: /usr/sbin/rpcbind -f -w
events: Ir
fl=/build/rpcbind/src/rpcb_svc.c
fn=rpcbproc_getaddr
10 100
11 50
fn=main
20 7
fl=/usr/lib/go/src/runtime/proc.go
fn=runtime.findRunnable
100 1000
fl=other.c
fn=main
30 3
summary: 1160
`

// TestParseCachegrindOut: the summary is the total; functions are summed
// over lines and over the files they appear in.
func TestParseCachegrindOut(t *testing.T) {
	total, by, err := parseCachegrindOut(strings.NewReader(cachegrindOut))
	if err != nil {
		t.Fatal(err)
	}
	if total != 1160 || by["rpcbproc_getaddr"] != 150 || by["main"] != 10 || by["runtime.findRunnable"] != 1000 || len(by) != 3 {
		t.Errorf("total %d by %v", total, by)
	}
	if _, _, err := parseCachegrindOut(strings.NewReader(strings.Replace(cachegrindOut, "summary: 1160\n", "", 1))); err == nil {
		t.Error("an out file without a summary (a daemon killed before it wrote) parsed")
	}
}

const perfTraceOut = `
 Summary of events:

 rpcbind (30070), 362 events, 40.5%

   syscall            calls  errors  total       min       avg       max       stddev
                                     (msec)    (msec)    (msec)    (msec)        (%)
   --------------- --------  ------ -------- --------- --------- ---------     ------
   nanosleep            165      0    63.424     0.044     0.384     6.549     19.72%
   futex                 10      1    35.452     0.000     3.545    32.077     89.80%


 rpcbind (30072), 196 events, 21.9%

   syscall            calls  errors  total       min       avg       max       stddev
                                     (msec)    (msec)    (msec)    (msec)        (%)
   --------------- --------  ------ -------- --------- --------- ---------     ------
   futex                  5      0    56.120     0.000    11.224    52.474     92.09%
   epoll_pwait           14      0    34.795     0.008     2.485    13.505     48.32%
`

// TestParsePerfTrace sums every thread's table by syscall name.
func TestParsePerfTrace(t *testing.T) {
	by, err := parsePerfTrace(strings.NewReader(perfTraceOut))
	if err != nil {
		t.Fatal(err)
	}
	if by["futex"] != 15 || by["nanosleep"] != 165 || by["epoll_pwait"] != 14 || len(by) != 3 {
		t.Errorf("by = %v", by)
	}
}

const straceOut = `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 45.00    0.000450           1       300           recvmmsg
 30.00    0.000300           1       200       100 epoll_pwait
 25.00    0.000250           2       100           sendmmsg
------ ----------- ----------- --------- --------- ----------------
100.00    0.001000           1       600       100 total
`

// TestParseStrace reads strace -c's table and leaves out its total line.
func TestParseStrace(t *testing.T) {
	by, err := parseStrace(strings.NewReader(straceOut))
	if err != nil {
		t.Fatal(err)
	}
	if by["recvmmsg"] != 300 || by["epoll_pwait"] != 200 || by["sendmmsg"] != 100 || len(by) != 3 {
		t.Errorf("by = %v", by)
	}
}

func TestFuncGroup(t *testing.T) {
	for fn, want := range map[string]string{
		"github.com/openrpcbind/rpcbind/internal/server.(*udpReader).recvmmsg": "server",
		"github.com/openrpcbind/rpcbind/internal/service.(*Service).serve":     "service",
		"github.com/openrpcbind/rpcbind/xdr.(*Decoder).Uint32":                 "xdr",
		"github.com/openrpcbind/rpcbind/internal/guard.(*Guard).Admit":         "ours-other",
		"runtime.findRunnable":              "runtime-sched-netpoll",
		"runtime.netpoll":                   "runtime-sched-netpoll",
		"runtime.mallocgcSmallScanNoHeader": "runtime-alloc-gc",
		"runtime.mapaccess2":                "runtime-other",
		"internal/poll.(*FD).Read":          "poll-syscall",
		"syscall.Syscall6":                  "poll-syscall",
		"net.(*UDPConn).ReadFrom":           "net",
		"fgets":                             "other",
		"_IO_file_underflow@@GLIBC_2.2.5":   "other",
	} {
		if got := funcGroup(fn); got != want {
			t.Errorf("funcGroup(%q) = %q, want %q", fn, got, want)
		}
	}
}

// TestProfileDiff: per call is (big - small) / calls, per function and per
// group, the largest first; a function only in the small run counts
// against its group.
func TestProfileDiff(t *testing.T) {
	small := map[string]int64{"runtime.netpoll": 1000, "runtime.findRunnable": 500, "fgets": 100}
	big := map[string]int64{"runtime.netpoll": 5000, "runtime.findRunnable": 2500, "github.com/openrpcbind/rpcbind/xdr.(*Decoder).Uint32": 40}
	groups, fns := profileDiff(small, big, 2, 15)
	if len(fns) != 3 || fns[0].name != "runtime.netpoll" || fns[0].perCall != 2000 || fns[1].perCall != 1000 || fns[2].perCall != 20 {
		t.Errorf("fns = %+v", fns)
	}
	want := map[string]float64{"runtime-sched-netpoll": 3000, "xdr": 20, "other": -50}
	if len(groups) != len(want) || groups[0].name != "runtime-sched-netpoll" {
		t.Errorf("groups = %+v", groups)
	}
	for _, g := range groups {
		if want[g.name] != g.perCall {
			t.Errorf("group %s = %v, want %v", g.name, g.perCall, want[g.name])
		}
	}
	if g, f := profileDiff(small, big, 0, 1); g != nil || f != nil {
		t.Error("profileDiff over 0 calls returned entries")
	}
}

// TestInstrClientChecks: the client refuses what would make a run
// unbounded or its count wrong.
func TestInstrClientChecks(t *testing.T) {
	ok := instrClientConfig{proto: "udp", proc: "getport", n: 10, gap: 0}
	if err := ok.check(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for _, mod := range []func(*instrClientConfig){
		func(c *instrClientConfig) { c.proto = "tcpconn" },
		func(c *instrClientConfig) { c.proc = "setunset" },
		func(c *instrClientConfig) { c.n = 0 },
		func(c *instrClientConfig) { c.n = instrMaxCalls + 1 },
		func(c *instrClientConfig) { c.gap = 2 * instrMaxGap },
		func(c *instrClientConfig) { c.preload = instrMaxPre + 1 },
	} {
		c := ok
		mod(&c)
		if err := c.check(); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}

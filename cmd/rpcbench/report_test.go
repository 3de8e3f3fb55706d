package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestReportResponderRows: issue 13's rows compare ours with the C
// responder of the same run (calls/s at least 0.95×, CPU per call at most
// 1.1×), on medians over the rounds; without responder lines there are
// none.
func TestReportResponderRows(t *testing.T) {
	lines := func(d string, udp, udpCPU, tcp, tcpCPU float64) string {
		var b strings.Builder
		for r, k := range []float64{0.5, 1, 2} { // the median is the middle round
			b.WriteString(strings.Join([]string{"daemon=" + d, "round=" + string(rune('1'+r)), "getport-udp",
				"calls/s=" + num(udp*k), "cpu_us/call=" + num(udpCPU*k), "p99=100us"}, " ") + "\n")
			b.WriteString(strings.Join([]string{"daemon=" + d, "round=" + string(rune('1'+r)), "getport-tcp",
				"calls/s=" + num(tcp*k), "cpu_us/call=" + num(tcpCPU*k), "p99=100us"}, " ") + "\n")
		}
		return b.String()
	}
	for _, tc := range []struct {
		name, in string
		want     []string
		absent   string
	}{
		{
			name: "met and missed",
			in:   lines("ours", 96000, 5.5, 90000, 7.0) + lines("responder", 100000, 5.0, 100000, 6.0),
			want: []string{
				"| GETPORT UDP c64 | 96000 calls/s | 100000 calls/s | ≥ 0.95× (got 0.96×) | met |",
				"| GETPORT UDP c64 CPU | 5.5 µs CPU/call | 5 µs CPU/call | ≤ 1.1× (got 1.10×) | met |",
				"| GETPORT TCP c64 | 90000 calls/s | 100000 calls/s | ≥ 0.95× (got 0.90×) | missed |",
				"| GETPORT TCP c64 CPU | 7 µs CPU/call | 6 µs CPU/call | ≤ 1.1× (got 1.17×) | missed |",
			},
		},
		{name: "no responder", in: lines("ours", 96000, 5.5, 90000, 7.0), absent: "C responder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := report(strings.NewReader(tc.in), &out); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("no line %q in\n%s", w, out.String())
				}
			}
			if tc.absent != "" && strings.Contains(out.String(), tc.absent) {
				t.Errorf("%q in\n%s", tc.absent, out.String())
			}
		})
	}
}

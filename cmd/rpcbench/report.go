package main

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// report reads result lines prefixed "daemon=NAME round=N " (as written by
// bench-compare.sh), takes the median of each figure over the rounds and
// prints the comparison table of the performance issue, each target row
// marked met or missed.
func report(in io.Reader, out io.Writer) error {
	// vals[daemon][label][key] = samples
	vals := map[string]map[string]map[string][]float64{}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || !strings.HasPrefix(f[0], "daemon=") {
			continue
		}
		d := strings.TrimPrefix(f[0], "daemon=")
		label := f[2]
		if vals[d] == nil {
			vals[d] = map[string]map[string][]float64{}
		}
		if vals[d][label] == nil {
			vals[d][label] = map[string][]float64{}
		}
		for _, kv := range f[3:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			x, err := strconv.ParseFloat(strings.TrimSuffix(v, "us"), 64)
			if err != nil {
				continue
			}
			vals[d][label][k] = append(vals[d][label][k], x)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	med := func(d, label, key string) float64 {
		s := append([]float64(nil), vals[d][label][key]...)
		if len(s) == 0 {
			return 0
		}
		sort.Float64s(s)
		return s[len(s)/2]
	}
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	type row struct {
		name, ours, ref, target string
		met                     bool
	}
	var rows []row
	add := func(name string, o, r float64, unit, target string, met bool) {
		rows = append(rows, row{name, num(o) + " " + unit, num(r) + " " + unit, target, met})
	}
	throughput := func(name, label string, min float64) {
		o, r := med("ours", label, "calls/s"), med("reference", label, "calls/s")
		add(name, o, r, "calls/s", fmt.Sprintf("≥ %.2g× (got %.2f×)", min, ratio(o, r)), o >= min*r && o > 0)
	}
	cpu := func(name, label string, max float64) {
		o, r := med("ours", label, "cpu_us/call"), med("reference", label, "cpu_us/call")
		add(name, o, r, "µs CPU/call", fmt.Sprintf("≤ %.2g× (got %.2f×)", max, ratio(o, r)), o <= max*r && o > 0)
	}
	throughput("GETPORT UDP c64", "getport-udp", 2.5)
	cpu("GETPORT UDP c64 CPU", "getport-udp", 0.4)
	throughput("GETPORT TCP c64", "getport-tcp", 2)
	throughput("GETADDR UDP c64", "getaddr-udp", 4)
	throughput("GETADDR TCP c64", "getaddr-tcp", 4)
	{
		o10, o10k := med("ours", "getport-udp-r10", "calls/s"), med("ours", "getport-udp-r10000", "calls/s")
		add("GETPORT R=10,000 vs R=10 (ours)", o10k, o10, "calls/s", fmt.Sprintf("≥ 0.9× (got %.2f×)", ratio(o10k, o10)), o10k >= 0.9*o10 && o10k > 0)
	}
	cpu("v2 DUMP TCP R=10,000 c8 CPU", "dump2-tcp-r10000", 0.25)
	cpu("v4 DUMP TCP R=10,000 c8 CPU", "dump4-tcp-r10000", 0.25)
	{
		o, r := med("ours", "setunset-w", "total_s"), med("reference", "setunset-w", "total_s")
		add("10,000 SETs+UNSETs, -w", o, r, "s", fmt.Sprintf("≥ 2× faster (got %.2f×)", ratio(r, o)), o > 0 && r >= 2*o)
	}
	throughput("a TCP connection per call c64", "tcpconn", 0.9)
	for _, l := range []string{"getport-udp", "getport-tcp", "getaddr-udp", "getaddr-tcp"} {
		o, r := med("ours", l, "p99"), med("reference", l, "p99")
		add("p99 "+l, o, r, "µs", "≤ reference", o > 0 && o <= r)
	}
	{
		o, r := med("ours", "idle", "rss_kib")/1024, med("reference", "idle", "rss_kib")/1024
		// Issue 13's targets (were 8 and 16 MiB); idle is sampled after -d
		// without calls.
		add("RSS idle", o, r, "MiB", "≤ 4 MiB", o > 0 && o <= 4)
		o, r = med("ours", "idle-r10000", "rss_kib")/1024, med("reference", "idle-r10000", "rss_kib")/1024
		add("RSS with 10,000 registrations", o, r, "MiB", "≤ 8 MiB", o > 0 && o <= 8)
	}
	fmt.Fprintf(out, "| workload | ours | reference | target | result |\n|---|---:|---:|---|---|\n")
	for _, r := range rows {
		res := "missed"
		if r.met {
			res = "met"
		}
		fmt.Fprintf(out, "| %s | %s | %s | %s | %s |\n", r.name, r.ours, r.ref, r.target, res)
	}
	if c := med("responder", "getport-udp", "calls/s"); c > 0 {
		fmt.Fprintf(out, "\nCeiling (trivial C responder, same run): GETPORT UDP c64 %.0f calls/s, TCP c64 %.0f calls/s, connection per call %.0f calls/s.\n",
			c, med("responder", "getport-tcp", "calls/s"), med("responder", "tcpconn", "calls/s"))
		// Issue 13: ours against the responder on the same workload.
		rows = rows[:0]
		for _, w := range [][2]string{{"GETPORT UDP c64", "getport-udp"}, {"GETPORT TCP c64", "getport-tcp"}} {
			o, r := med("ours", w[1], "calls/s"), med("responder", w[1], "calls/s")
			add(w[0], o, r, "calls/s", fmt.Sprintf("≥ 0.95× (got %.2f×)", ratio(o, r)), o > 0 && o >= 0.95*r)
			o, r = med("ours", w[1], "cpu_us/call"), med("responder", w[1], "cpu_us/call")
			add(w[0]+" CPU", o, r, "µs CPU/call", fmt.Sprintf("≤ 1.1× (got %.2f×)", ratio(o, r)), o > 0 && r > 0 && o <= 1.1*r)
		}
		fmt.Fprintf(out, "\n| workload | ours | C responder | target | result |\n|---|---:|---:|---|---|\n")
		for _, r := range rows {
			res := "missed"
			if r.met {
				res = "met"
			}
			fmt.Fprintf(out, "| %s | %s | %s | %s | %s |\n", r.name, r.ours, r.ref, r.target, res)
		}
	}
	return nil
}

// num prints a figure without exponent: whole numbers from 100 up, three
// significant digits below.
func num(x float64) string {
	if x >= 100 || x <= -100 {
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strconv.FormatFloat(x, 'g', 3, 64)
}

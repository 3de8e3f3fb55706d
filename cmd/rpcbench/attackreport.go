package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Targets of the attack bench (issue 11), per daemon × attack × victim
// transport.
const (
	attackRSSMax    = 64 << 10 // KiB of daemon RSS at any sample
	attackP99Factor = 2        // × the unloaded p99 of the same daemon and transport…
	attackP99Slack  = 1000     // … + this many µs
)

// attackReport reads the raw lines of attack-bench ("daemon=D attack=A
// key=value…") and prints the table: per daemon × attack × victim
// transport the probes sent and lost, p50 and p99, the daemon's largest
// RSS, the attack rate achieved and whether the targets were met.
func attackReport(in io.Reader, out io.Writer) error {
	type key struct{ d, a, v string }
	victims := map[key]map[string]string{}
	phases := map[[2]string]map[string]string{} // rss line
	attackers := map[[2]string]map[string]string{}
	var order []key
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || !strings.HasPrefix(f[0], "daemon=") || !strings.HasPrefix(f[1], "attack=") {
			continue
		}
		d, a := strings.TrimPrefix(f[0], "daemon="), strings.TrimPrefix(f[1], "attack=")
		kv := map[string]string{}
		for _, s := range f[2:] {
			if k, v, ok := strings.Cut(s, "="); ok {
				kv[k] = v
			}
		}
		switch {
		case kv["victim"] != "":
			k := key{d, a, kv["victim"]}
			if victims[k] == nil {
				order = append(order, k)
			}
			victims[k] = kv
		case f[2] == "attacker":
			attackers[[2]string{d, a}] = kv
		case kv["rss_max_kib"] != "":
			phases[[2]string{d, a}] = kv
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	num := func(m map[string]string, k string) float64 {
		x, err := strconv.ParseFloat(strings.TrimSuffix(m[k], "us"), 64)
		if err != nil {
			return -1
		}
		return x
	}
	fmt.Fprintln(out, "| daemon | attack | victim | sent | lost | p50 µs | p99 µs | max RSS MiB | attack achieved | target | result |")
	fmt.Fprintln(out, "|---|---|---|---:|---:|---:|---:|---:|---|---|---|")
	for _, k := range order {
		v := victims[k]
		ph := phases[[2]string{k.d, k.a}]
		at := attackers[[2]string{k.d, k.a}]
		base := victims[key{k.d, "none", k.v}]
		ref := victims[key{"reference", k.a, k.v}]
		sent, lost, p50, p99 := num(v, "sent"), num(v, "lost"), num(v, "p50"), num(v, "p99")
		rss := num(ph, "rss_max_kib")
		var miss []string
		if lost != 0 {
			miss = append(miss, "loss")
		}
		if rss < 0 || rss > attackRSSMax {
			miss = append(miss, "RSS")
		}
		if ph["daemon_alive"] == "false" {
			miss = append(miss, "daemon died")
		}
		target := "no loss, RSS ≤ 64 MiB"
		if k.a != "none" {
			lim := attackP99Factor*num(base, "p99") + attackP99Slack
			target = fmt.Sprintf("no loss, p99 ≤ %.0f", lim)
			if base == nil || p99 > lim {
				miss = append(miss, "p99")
			}
			if k.d != "reference" && ref != nil {
				// A lost probe counts as an infinite latency: a reference
				// that lost 1% or more of its probes has no p99 to beat.
				if rl, rs := num(ref, "lost"), num(ref, "sent"); rl*100 >= rs {
					target += " and ≤ ref ∞"
				} else {
					target += fmt.Sprintf(" and ≤ ref %.0f", num(ref, "p99"))
					if p99 > num(ref, "p99") {
						miss = append(miss, "p99 > ref")
					}
				}
			}
			target += ", RSS ≤ 64 MiB"
		}
		achieved := "–"
		if at != nil {
			achieved = at["rate"] + " " + at["unit"]
			switch {
			case at["statentries"] != "":
				achieved += " (" + at["statentries"] + " stat entries)"
			case at["established"] != "":
				achieved += " (of " + at["established"] + " opened)"
			case at["regs_tried"] != "":
				achieved += fmt.Sprintf(" (%.0f of %s regs)", num(at, "regs_unix_ok")+num(at, "regs_udp_ok"), at["regs_tried"])
			}
		} else if k.a != "none" {
			achieved = "attacker failed"
			miss = append(miss, "no attack")
		}
		if ab := ph["aborted"]; ab != "" {
			achieved += " (stopped: " + strings.ReplaceAll(ab, "_", " ") + ")"
		}
		res := "met"
		if len(miss) > 0 {
			res = "missed: " + strings.Join(miss, ", ")
		}
		fmt.Fprintf(out, "| %s | %s | %s | %.0f | %.0f | %.0f | %.0f | %.1f | %s | %s | %s |\n",
			k.d, k.a, k.v, sent, lost, p50, p99, rss/1024, achieved, target, res)
	}
	return nil
}

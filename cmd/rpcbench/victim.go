package main

// The victim of make bench-attack: a local client asking GETPORT of
// (100000, 2, tcp) at a modest open-loop rate over UDP, TCP and the local
// socket, every probe with a new socket (as a libtirpc client handle per
// lookup) and a timeout counted as a loss. It never retransmits.

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"
)

// Victim bounds.
const (
	maxVictimRate = 2000 // probes per second per transport
	maxVictimDur  = 60 * time.Second
)

type victimConfig struct {
	udp, tcp, unix string // addresses; "" skips the transport
	rate           int
	dur, timeout   time.Duration
}

type victimResult struct {
	transport            string
	sent, timeouts, errs int64
	p50, p99, maxLat     time.Duration
	received             int
	firstErr             string
}

func (r victimResult) line() string {
	s := fmt.Sprintf("victim=%s sent=%d lost=%d timeouts=%d errors=%d p50=%s p99=%s max=%s",
		r.transport, r.sent, r.timeouts+r.errs, r.timeouts, r.errs, us(r.p50), us(r.p99), us(r.maxLat))
	return s
}

// runVictim probes every configured transport concurrently for c.dur.
func runVictim(ctx context.Context, c victimConfig) []victimResult {
	c.rate = min(max(c.rate, 1), maxVictimRate)
	c.dur = min(c.dur, maxVictimDur)
	var out []victimResult
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range [][2]string{{"udp", c.udp}, {"tcp", c.tcp}, {"unix", c.unix}} {
		if t[1] == "" {
			continue
		}
		wg.Add(1)
		go func(network, addr string) {
			defer wg.Done()
			r := probeLoop(ctx, c, network, addr)
			mu.Lock()
			out = append(out, r)
			mu.Unlock()
		}(t[0], t[1])
	}
	wg.Wait()
	order := map[string]int{"udp": 0, "tcp": 1, "unix": 2}
	slices.SortFunc(out, func(a, b victimResult) int { return order[a.transport] - order[b.transport] })
	return out
}

func probeLoop(ctx context.Context, c victimConfig, network, addr string) victimResult {
	res := victimResult{transport: network}
	n := int(c.dur.Seconds() * float64(c.rate))
	period := time.Second / time.Duration(c.rate)
	var mu sync.Mutex
	lats := make([]time.Duration, 0, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		time.Sleep(time.Until(t0.Add(time.Duration(i) * period)))
		res.sent++
		wg.Add(1)
		go func(xid uint32) {
			defer wg.Done()
			lat, err := probe(network, addr, xid, c.timeout)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				lats = append(lats, lat)
			case isTimeout(err):
				res.timeouts++
			default:
				res.errs++
				if res.firstErr == "" {
					res.firstErr = err.Error()
				}
			}
		}(uint32(i + 1))
	}
	wg.Wait()
	slices.Sort(lats)
	res.received = len(lats)
	if len(lats) > 0 {
		res.p50 = lats[len(lats)/2]
		res.p99 = lats[min(len(lats)-1, len(lats)*99/100)]
		res.maxLat = lats[len(lats)-1]
	}
	return res
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// probe is one GETPORT on a new socket; the latency includes the connect.
func probe(network, addr string, xid uint32, timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	deadline := t0.Add(timeout)
	msg := getportProbe(xid)
	var r []byte
	var err error
	if network == "udp" {
		var c net.Conn
		if c, err = net.Dial("udp", addr); err != nil {
			return 0, err
		}
		d := &dgram{c: c, buf: make([]byte, 1500)}
		r, err = d.call(msg, deadline)
		d.close()
	} else {
		s := &stream{network: network, addr: addr, perCall: true}
		r, err = s.call(msg, deadline)
	}
	if err != nil {
		return 0, err
	}
	if !probeOK(r, xid) {
		return 0, errReply
	}
	return time.Since(t0), nil
}

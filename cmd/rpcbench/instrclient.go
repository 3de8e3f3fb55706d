package main

// "rpcbench instr-client": the client of make bench-instructions. It sends
// exactly N calls of one workload over one socket (a connected UDP socket,
// or one persistent TCP connection), waits for each reply and then for the
// gap before the next call, so that with a gap the daemon goes idle and
// wakes for every call, as it does under real NFS traffic. It is not
// measured; the daemon is (instrbench_linux.go).

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"slices"
	"time"
)

// Bounds of one instr-client run.
const (
	instrMaxCalls = 1_000_000        // calls in one run
	instrMaxGap   = time.Second      // gap between calls
	instrMaxPre   = 10_000           // registrations preloaded
	instrTimeout  = 30 * time.Second // one call (a DUMP under valgrind is slow)
)

type instrClientConfig struct {
	addr    string
	proto   string // udp, tcp
	proc    string // null getport getaddr dump2 dump4
	n       int
	gap     time.Duration
	preload int
	timeout time.Duration
}

type instrClientResult struct {
	calls  int
	rttP50 time.Duration
}

func (c *instrClientConfig) check() error {
	if c.proto != "udp" && c.proto != "tcp" {
		return fmt.Errorf("instr-client: -proto %q: want udp or tcp", c.proto)
	}
	if c.n < 1 || c.n > instrMaxCalls {
		return fmt.Errorf("instr-client: -n %d: want 1..%d", c.n, instrMaxCalls)
	}
	if c.gap < 0 || c.gap > instrMaxGap {
		return fmt.Errorf("instr-client: -gap %s: want 0..%s", c.gap, instrMaxGap)
	}
	if c.preload < 0 || c.preload > instrMaxPre {
		return fmt.Errorf("instr-client: -preload %d: want 0..%d", c.preload, instrMaxPre)
	}
	if c.timeout <= 0 || c.timeout > instrTimeout {
		c.timeout = instrTimeout
	}
	_, err := callMsg(c.proc, 0, 0)
	return err
}

// instrCalls preloads c.preload registrations (over their own UDP socket,
// not removed afterwards), then makes exactly c.n calls. Any failed call
// fails the run: its count would be wrong.
func instrCalls(ctx context.Context, c instrClientConfig) (instrClientResult, error) {
	var res instrClientResult
	if err := c.check(); err != nil {
		return res, err
	}
	if c.preload > 0 {
		if err := preload(ctx, c.preload, true); err != nil {
			return res, fmt.Errorf("instr-client: %w", err)
		}
	}
	msg, _ := callMsg(c.proc, 0, 0) // checked; the target is program 100000 itself
	cn, err := dial(config{addr: c.addr, transport: c.proto})
	if err != nil {
		return res, fmt.Errorf("instr-client: %w", err)
	}
	defer cn.close()
	rtts := make([]time.Duration, 0, c.n)
	for i := 0; i < c.n; i++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		xid := uint32(0x1a000000 + i)
		binary.BigEndian.PutUint32(msg, xid)
		t0 := time.Now()
		r, err := cn.call(msg, t0.Add(c.timeout))
		if err != nil {
			return res, fmt.Errorf("instr-client: call %d: %w", i, err)
		}
		rtts = append(rtts, time.Since(t0))
		if err := check(r, xid); err != nil {
			return res, fmt.Errorf("instr-client: call %d: %w", i, err)
		}
		res.calls++
		if c.gap > 0 {
			time.Sleep(c.gap)
		}
	}
	slices.Sort(rtts)
	res.rttP50 = rtts[len(rtts)/2]
	return res, nil
}

// instrClientMain is "rpcbench instr-client".
func instrClientMain(args []string) error {
	var c instrClientConfig
	fs := flag.NewFlagSet("instr-client", flag.ExitOnError)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:111", "daemon address")
	fs.StringVar(&c.proto, "proto", "udp", "udp (one connected socket) or tcp (one persistent connection)")
	fs.StringVar(&c.proc, "proc", "getport", "null, getport, getaddr, dump2, dump4")
	fs.IntVar(&c.n, "n", 1000, "calls to make, exactly")
	fs.DurationVar(&c.gap, "gap", time.Millisecond, "pause after each reply before the next call (0: back to back)")
	fs.IntVar(&c.preload, "preload", 0, "register this many programs first (v3 SET over UDP to 127.0.0.1:111; left in place)")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "per-call timeout")
	fs.Parse(args)
	if fs.NArg() != 0 {
		return errors.New("instr-client: unexpected arguments")
	}
	res, err := instrCalls(context.Background(), c)
	if err != nil {
		return err
	}
	fmt.Printf("instr-client proc=%s proto=%s gap=%s calls=%d rtt_p50_us=%d\n", c.proc, c.proto, c.gap, res.calls, res.rttP50.Microseconds())
	return nil
}

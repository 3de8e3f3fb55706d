//go:build linux

package main

import (
	"slices"
	"strings"
	"testing"
)

// TestInstrEnv: GOGC=-gogc reaches our daemon only, GODEBUG=cpu.rdtscp=off
// only runs under valgrind, and the caller's own GOGC and GODEBUG never
// reach either daemon.
func TestInstrEnv(t *testing.T) {
	t.Setenv("GOGC", "77")
	t.Setenv("GODEBUG", "gctrace=1")
	x := &instrNS{o: instrOpts{gogc: "off"}}
	has := func(env []string, kv string) bool { return slices.Contains(env, kv) }
	count := func(env []string, prefix string) int {
		n := 0
		for _, e := range env {
			if strings.HasPrefix(e, prefix) {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct {
		name     string
		valgrind bool
		gogc     string
		debug    string
	}{
		{"ours", true, "GOGC=off", "GODEBUG=cpu.rdtscp=off"},
		{"ours", false, "GOGC=off", ""},
		{"reference", true, "", "GODEBUG=cpu.rdtscp=off"},
		{"reference", false, "", ""},
	} {
		env := x.env(tc.name, tc.valgrind)
		if tc.gogc != "" && (!has(env, tc.gogc) || count(env, "GOGC=") != 1) || tc.gogc == "" && count(env, "GOGC=") != 0 {
			t.Errorf("%s valgrind=%v: GOGC in %v", tc.name, tc.valgrind, env)
		}
		if tc.debug != "" && (!has(env, tc.debug) || count(env, "GODEBUG=") != 1) || tc.debug == "" && count(env, "GODEBUG=") != 0 {
			t.Errorf("%s valgrind=%v: GODEBUG in %v", tc.name, tc.valgrind, env)
		}
	}
	x.o.gogc = ""
	if env := x.env("ours", false); count(env, "GOGC=") != 0 {
		t.Errorf("-gogc \"\" still sets GOGC: %v", env)
	}
}

// TestInstrOptsCheck: bounds on N, the gap, the workloads and -keep.
func TestInstrOptsCheck(t *testing.T) {
	ok := instrOpts{nGap: 800, nB2B: 4000, nDump: 200, gap: 1e6, workloads: "getport-udp,dump2-tcp-r1000", tools: "syscalls", tracer: "strace"}
	if err := ok.check(); err != nil && !strings.Contains(err.Error(), "not found") {
		t.Fatalf("valid options refused: %v", err)
	}
	for _, mod := range []func(*instrOpts){
		func(o *instrOpts) { o.nGap = 0 },
		func(o *instrOpts) { o.nB2B = instrMaxCalls },
		func(o *instrOpts) { o.gap = 0 },
		func(o *instrOpts) { o.workloads = "getport-udp,smurf" },
		func(o *instrOpts) { o.keep = "relative/dir" },
		func(o *instrOpts) { o.keep = "/run/instr/keep" },
		func(o *instrOpts) { o.tracer = "ltrace" },
	} {
		o := ok
		mod(&o)
		if err := o.check(); err == nil || strings.Contains(err.Error(), "not found") {
			t.Errorf("options %+v: err %v, want a refusal", o, err)
		}
	}
}

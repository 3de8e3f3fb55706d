package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/nstest"
	"github.com/openrpcbind/rpcbind/internal/warmstart"
)

// procStatus returns the fields of /proc/PID/status, blanks collapsed.
func procStatus(t testing.TB, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return m
}

// hSteps probe a daemon started with -h 127.0.0.2: its self entries, UDP
// answered on 127.0.0.1 (added automatically) and 127.0.0.2 but not on
// 127.0.0.3, TCP still on the wildcard.
var hSteps = []string{
	"rpcinfo",
	"rpcinfo -p",
	"rpcinfo -n 111 -u 127.0.0.1 100000 2",
	"rpcinfo -n 111 -u 127.0.0.2 100000 3",
	"rpcinfo -n 111 -u 127.0.0.3 100000 2",
	"rpcinfo -n 111 -t 127.0.0.3 100000 4",
	"rpcinfo -n 111 -u ::1 100000 4",
}

// TestCombinedFlagsAndOptions: a daemon started with -wf (combined short
// flags) writes its table at SIGTERM — the files' bytes decode to exactly
// what DUMP answered — and a second one started the way the Debian unit
// does it, with $OPTIONS from /etc/default/rpcbind expanded by the caller
// (here `sh -c 'exec rpcbind $OPTIONS -f'`, OPTIONS="-w -h 127.0.0.2"),
// reads them back and restricts UDP as the reference does. Both runs are
// compared side by side with the reference; the process runs as _rpc.
func TestCombinedFlagsAndOptions(t *testing.T) {
	env, ok := Enter(t)
	if !ok {
		return
	}
	rpcUID, err := userID("_rpc")
	if err != nil {
		t.Fatalf("user _rpc: %v", err)
	}
	t.Setenv("OPTIONS", "-w -h 127.0.0.2")
	outs := map[string][]Result{}
	logs := map[string]string{}
	for _, impl := range env.Impls {
		t.Run(impl.Name, func(t *testing.T) {
			nstest.FreshRun(t)
			d := nstest.StartDaemon(t, impl.Path, "-wf")
			// Bound sockets come before the privilege drop; an answer
			// comes after it.
			dumpV3(t)
			st := procStatus(t, d.Cmd.Process.Pid)
			if uid := strings.Fields(st["Uid"]); len(uid) != 4 || uid[0] != rpcUID || uid[1] != rpcUID || uid[2] != rpcUID || uid[3] != rpcUID {
				t.Errorf("%s runs as Uid %q, want _rpc (%s) in all four", impl.Name, st["Uid"], rpcUID)
			}
			t.Logf("%s: CapPrm %s CapEff %s CapBnd %s", impl.Name, st["CapPrm"], st["CapEff"], st["CapBnd"])
			if st["CapPrm"] != "0000000000000000" || st["CapEff"] != "0000000000000000" {
				t.Errorf("%s keeps capabilities: CapPrm %s CapEff %s", impl.Name, st["CapPrm"], st["CapEff"])
			}
			// This binary is built with -race, hence cgo: the drop went
			// through the re-execution (cmd/rpcbind's privs_test.go checks
			// every thread of both builds). The reference keeps CapBnd.
			if impl.Name == "ours" && (st["CapBnd"] != "0000000000000000" || st["NoNewPrivs"] != "1") {
				t.Errorf("ours: CapBnd %s NoNewPrivs %s, want 0 and 1", st["CapBnd"], st["NoNewPrivs"])
			}

			for _, l := range []string{
				"tirpcclient set 300000 1 tcp 0.0.0.0.3.232",
				"tirpcclient set 300000 1 udp6 ::.3.232",
				"tirpcclient pmapset 300001 2 udp 1234",
				"@nobody tirpcclient set 300002 1 tcp 0.0.0.0.3.234",
			} {
				if r := env.Run(t, l); !strings.HasSuffix(r.Stdout, "set: true\n") {
					t.Fatalf("%s", r)
				}
			}
			v3, v2 := dumpV3(t), dumpV2(t)
			stopOK(t, d, syscall.SIGTERM)

			// SIGTERM wrote the table: rpcbind.xdr is the v3 DUMP and
			// portmap.xdr the v2 DUMP, entry for entry, in order.
			es, err := warmstart.ReadRPCB(filepath.Join(nstest.RPCBindDir, warmstart.RPCBFile))
			if err != nil {
				t.Fatalf("%s: %v", impl.Name, err)
			}
			if len(es) != len(v3) {
				t.Errorf("%s: rpcbind.xdr holds %d entries, DUMP answered %d", impl.Name, len(es), len(v3))
			}
			for i := 0; i < min(len(es), len(v3)); i++ {
				e, w := es[i], v3[i]
				if e.Prog != w.Prog || e.Vers != w.Vers || e.Netid != w.Netid || e.Addr != w.Addr || e.Owner != w.Owner {
					t.Errorf("%s: rpcbind.xdr entry %d is %+v, DUMP said %+v", impl.Name, i, e, w)
				}
			}
			ms, err := warmstart.ReadPmap(filepath.Join(nstest.RPCBindDir, warmstart.PmapFile))
			if err != nil {
				t.Fatalf("%s: %v", impl.Name, err)
			}
			if len(ms) != len(v2) {
				t.Errorf("%s: portmap.xdr holds %d entries, v2 DUMP answered %d", impl.Name, len(ms), len(v2))
			}
			for i := 0; i < min(len(ms), len(v2)); i++ {
				m, w := ms[i], v2[i]
				if m.Prog != w.Prog || m.Vers != w.Vers || m.Prot != w.Prot || m.Port != w.Port {
					t.Errorf("%s: portmap.xdr entry %d is %+v, v2 DUMP said %+v", impl.Name, i, m, w)
				}
			}

			// As systemd runs it: ExecStart=/sbin/rpcbind $OPTIONS -f.
			d = nstest.StartDaemon(t, "/bin/sh", "-c", "exec "+impl.Path+" $OPTIONS -f")
			var steps []Result
			for _, l := range hSteps {
				steps = append(steps, env.Run(t, l))
			}
			stopOK(t, d, syscall.SIGTERM)
			outs[impl.Name], logs[impl.Name] = steps, Said(t, impl, d)

			// What the steps must show, whoever runs.
			rpcinfo := steps[0].Stdout
			for _, want := range []string{
				"    100000    4    udp       127.0.0.2.0.111        portmapper superuser\n",
				"    100000    3    udp6      ::1.0.111              portmapper superuser\n",
				"    100000    4    tcp       0.0.0.0.0.111          portmapper superuser\n",
				"    300000    1    tcp       0.0.0.0.3.232          -          superuser\n",
				"    300002    1    tcp       0.0.0.0.3.234          -          65534\n",
			} {
				if !strings.Contains(rpcinfo, want) {
					t.Errorf("%s: rpcinfo has no row %q:\n%s", impl.Name, want, rpcinfo)
				}
			}
			for i, ok := range []bool{true, true, false, true, true} {
				r := steps[2+i]
				if answered := r.Exit == 0 && strings.HasSuffix(r.Stdout, "ready and waiting\n"); answered != ok {
					t.Errorf("%s: answered=%v, want %v:\n%s", impl.Name, answered, ok, r)
				}
			}
		})
	}
	ref := outs["reference"]
	for name, steps := range outs {
		if name == "reference" || ref == nil {
			continue
		}
		for i, r := range ref {
			if steps[i] != r {
				t.Errorf("%s differs from the reference on %q:\n%s", name, r.Cmd, resultDiff(r, steps[i]))
			}
		}
		if logs[name] != logs["reference"] {
			t.Errorf("%s said %q, the reference %q", name, logs[name], logs["reference"])
		}
	}
}

// TestHostBindFailure: -h addresses that cannot be bound. Debian's 1.2.6
// aborts with a double free on any -h bind failure — including the example
// of /etc/default/rpcbind, `-h 127.0.0.1 -h ::1` (duplicates of the
// addresses it adds itself) — which is why ours differs: it skips what it
// cannot bind, says so, and serves.
func TestHostBindFailure(t *testing.T) {
	env, ok := Enter(t)
	if !ok {
		return
	}
	for _, tc := range []struct {
		name string
		args []string
		log  string // a line ours must print; "" for none
	}{
		{"duplicates", []string{"-h", "127.0.0.1", "-h", "::1"}, ""},
		{"not-configured", []string{"-h", "192.0.2.1"}, "192.0.2.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, impl := range env.Impls {
				nstest.FreshRun(t)
				args := append([]string{"-f"}, tc.args...)
				if impl.Name == "reference" {
					d := nstest.Start(t, impl.Path, args...)
					err := waitExit(d, nstest.StartTimeout)
					t.Logf("reference %v: %v, said %q", args, err, d.Output())
					if ee, ok := d.Cmd.ProcessState.Sys().(syscall.WaitStatus); err == nil || d.Cmd.ProcessState == nil || !ok ||
						!ee.Signaled() || ee.Signal() != syscall.SIGABRT || !strings.Contains(d.Output(), "double free") {
						t.Errorf("reference %v: %v, output %q; expected the 1.2.6 abort (double free)", args, err, d.Output())
					}
					continue
				}
				d := nstest.StartDaemon(t, impl.Path, args...)
				for _, l := range []string{
					"rpcinfo -n 111 -u 127.0.0.1 100000 2",
					"rpcinfo -n 111 -u ::1 100000 4",
					"rpcinfo -n 111 -t 127.0.0.1 100000 3",
				} {
					if r := env.Run(t, l); r.Exit != 0 {
						t.Errorf("%s %v: %s", impl.Name, args, r)
					}
				}
				if r := env.Run(t, "rpcinfo"); !strings.Contains(r.Stdout, " udp       127.0.0.1.0.111 ") ||
					!strings.Contains(r.Stdout, " udp6      ::1.0.111 ") {
					t.Errorf("%s %v: self entries:\n%s", impl.Name, args, r)
				}
				time.Sleep(10 * time.Millisecond) // let the pipe deliver the log
				stopOK(t, d, syscall.SIGTERM)
				out := Said(t, impl, d)
				if tc.log != "" && !strings.Contains(out, tc.log) {
					t.Errorf("%s %v: no log line naming %s: %q", impl.Name, args, tc.log, out)
				}
				if tc.log == "" && out != "" {
					t.Errorf("%s %v: unexpected output %q", impl.Name, args, out)
				}
			}
		})
	}
}

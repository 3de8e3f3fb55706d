package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/nstest"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/internal/warmstart"
	"github.com/openrpcbind/rpcbind/pmap"
	"golang.org/x/sys/unix"
)

// TestNotifyReadOnly: /run/rpcbind turns read-only under a running
// daemon (issue 6 "the state directory ... read-only: service continues, a
// clear log"). A `mount -o remount,ro` of its tmpfs is refused with EBUSY
// while the daemon holds its journal open for writing (the kernel counts
// open writers), so the test makes the directory read-only the other way
// the kernel offers: a read-only bind mount of the directory over itself.
// Every file the daemon creates there then fails with a real EROFS, while
// its open journal still takes appends (write access is checked at open),
// so nothing acknowledged is at risk; what fails is the compaction into
// the C-format files, which registration churn (SET then UNSET) brings
// due. The daemon keeps answering SETs TRUE and GETPORT finds them, logs
// one "cannot save the registrations" line naming the directory and the
// error, turns STATUS= degraded, and once the bind mount goes its retry
// timer rewrites the files with everything.
func TestNotifyReadOnly(t *testing.T) {
	bin := binary(t)
	if !nstest.Enter(t) {
		return
	}
	nstest.MountTmpfs(t, nstest.RPCBindDir)
	uid, gid := lookupRPC(t)
	if err := os.Chown(nstest.RPCBindDir, uid, gid); err != nil {
		t.Fatal(err)
	}
	ch := fakeManager(t)
	t.Setenv("WATCHDOG_USEC", "")
	d := nstest.Start(t, bin, "-f", "-w")
	if n := next(t, ch, true); n.msg != "READY=1\nSTATUS=serving 6 transports, 12 registrations" {
		t.Fatalf("first notification %q", n.msg)
	}

	err := unix.Mount("", nstest.RPCBindDir, "", unix.MS_REMOUNT|unix.MS_RDONLY, "mode=0755")
	if !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("remount read-only under the daemon: %v, want EBUSY (journal open for writing)", err)
	}
	if err := unix.Mount(nstest.RPCBindDir, nstest.RPCBindDir, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("", nstest.RPCBindDir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(nstest.RPCBindDir, "probe"), nil, 0o600); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("the bind mount is not read-only: %v", err)
	}

	c, err := rpc.Dial("unix", nstest.SocketPath, rpc.ClientOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	u, err := rpc.Dial("udp", "127.0.0.1:111", rpc.ClientOptions{Timeout: 5 * time.Second, Retransmit: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	call := func(proc pmap.Proc, prog uint32, port int) {
		t.Helper()
		addr := fmt.Sprintf("0.0.0.0.%d.%d", port>>8, port&0xff)
		args := pmap.AppendRPCB(nil, prog, 1, "tcp", addr, "")
		res, err := c.Call(context.Background(), pmap.Prog, 3, uint32(proc), nil, args)
		if err != nil || len(res) != 4 || res[3] != 1 {
			t.Fatalf("proc %d of %d: %x, %v (must go on from memory)", proc, prog, res, err)
		}
	}
	getport := func(prog uint32) uint32 {
		t.Helper()
		m := pmap.Mapping{Prog: prog, Vers: 1, Prot: pmap.IPProtoTCP}
		res, err := u.Call(context.Background(), pmap.Prog, 2, uint32(pmap.PmapProcGetPort), nil, m.AppendXDR(nil))
		if err != nil || len(res) != 4 {
			t.Fatalf("GETPORT %d: %x, %v", prog, res, err)
		}
		return uint32(res[0])<<24 | uint32(res[1])<<16 | uint32(res[2])<<8 | uint32(res[3])
	}

	// Kept registrations, then churn until a compaction is due and fails.
	kept := 0
	keep := func() {
		t.Helper()
		prog := uint32(410000 + kept)
		call(pmap.RPCBProcSet, prog, 2000+kept)
		kept++
		if p := getport(prog); p != uint32(2000+kept-1) {
			t.Fatalf("GETPORT %d while read-only: %d, want %d", prog, p, 2000+kept-1)
		}
	}
	var degraded string
	churn := func(rounds int) {
		t.Helper()
		for i := 0; i < rounds; i++ {
			call(pmap.RPCBProcSet, 420000, 3000)
			call(pmap.RPCBProcUnset, 420000, 3000)
			if i%64 == 0 {
				keep()
			}
			select {
			case n := <-ch:
				if !strings.HasPrefix(n.msg, "STATUS=degraded: ") {
					t.Fatalf("notification %q, want a degraded STATUS=", n.msg)
				}
				if degraded == "" {
					degraded = n.msg
				}
			default:
			}
		}
	}
	for i := 0; i < 4 && degraded == ""; i++ {
		churn(600) // 1,200 journal records: past warmstart.DefaultCompactFloor
	}
	if degraded == "" {
		degraded = next(t, ch, true).msg
	}
	const wantDegraded = "STATUS=degraded: cannot save the registrations in /run/rpcbind (read-only file system), serving them from memory; serving 6 transports, "
	if !strings.HasPrefix(degraded, wantDegraded) {
		t.Errorf("degraded STATUS: %q, want prefix %q", degraded, wantDegraded)
	}
	churn(600) // another failed compaction within the minute: no second log line
	keep()
	t.Logf("%d registrations kept while read-only; %s", kept, degraded)

	if err := unix.Unmount(nstest.RPCBindDir, 0); err != nil { // the read-only bind
		t.Fatal(err)
	}
	want := fmt.Sprintf("STATUS=serving 6 transports, %d registrations", 12+kept)
	for i := 0; ; i++ {
		if i == 10 {
			t.Fatalf("still degraded after %d updates", i)
		}
		n := next(t, ch, true)
		if n.msg == want {
			break
		}
		if !strings.HasPrefix(n.msg, "STATUS=degraded: ") {
			t.Fatalf("while healing: %q, want %q", n.msg, want)
		}
	}
	// Healed by the retry timer alone: the C-format file has every kept
	// registration (and the journal applies to it).
	checkSaved := func(when string) {
		t.Helper()
		es, err := warmstart.ReadRPCB(filepath.Join(nstest.RPCBindDir, "rpcbind.xdr"))
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		have := map[uint32]bool{}
		for _, e := range es {
			have[e.Prog] = true
		}
		for i := 0; i < kept; i++ {
			if !have[uint32(410000+i)] {
				t.Errorf("%s: rpcbind.xdr lacks %d (%d entries)", when, 410000+i, len(es))
			}
		}
		if have[420000] {
			t.Errorf("%s: rpcbind.xdr has the unset 420000", when)
		}
	}
	checkSaved("after healing")
	if err := d.Stop(syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
	checkSaved("after SIGTERM")
	out := d.Output()
	var errLines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "cannot save the registrations") {
			errLines = append(errLines, l)
		}
	}
	if len(errLines) != 1 || !strings.Contains(errLines[0], nstest.RPCBindDir+"/") ||
		!strings.Contains(errLines[0], "read-only file system") {
		t.Errorf("persistence error lines %q, want one naming %s and \"read-only file system\"; output:\n%s",
			errLines, nstest.RPCBindDir, out)
	}
	if !strings.Contains(out, "registrations saved again") {
		t.Errorf("no recovery logged; output:\n%s", out)
	}
}

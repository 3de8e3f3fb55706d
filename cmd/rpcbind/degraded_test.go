package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/nstest"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
)

// TestDegradedSetNotDurable pins the one documented exception to
// "journalled before acknowledged" (README, issue 11 item 8b; DECISIONS
// "persistence failure": never refuse a boot-time registration because of
// the disk): with a state directory the daemon cannot write, a SET is
// acknowledged TRUE and served from memory, the failure is logged at
// LOG_ERR — and the registration is not durable: a kill -9 loses it. Once
// the directory is writable again, the next start saves the table.
func TestDegradedSetNotDurable(t *testing.T) {
	bin := binary(t)
	if !nstest.Enter(t) {
		return
	}
	uid, gid := lookupRPC(t)
	state := "/run/degraded-state"
	if err := os.Mkdir(state, 0o755); err != nil { // root's: _rpc cannot write
		t.Fatal(err)
	}
	args := []string{"-f", "-w", "--state-dir=" + state}
	d := nstest.StartDaemon(t, bin, args...)
	set := func(prog uint32) bool {
		t.Helper()
		c, err := rpc.Dial("unix", nstest.SocketPath, rpc.ClientOptions{Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		res, err := c.Call(context.Background(), pmap.Prog, 3, uint32(pmap.RPCBProcSet), nil,
			pmap.AppendRPCB(nil, prog, 1, "tcp", "0.0.0.0.7.208", ""))
		if err != nil || len(res) != 4 {
			t.Fatalf("SET %d: %x, %v", prog, res, err)
		}
		return res[3] == 1
	}
	getport := func(prog uint32) uint32 {
		t.Helper()
		c, err := rpc.Dial("unix", nstest.SocketPath, rpc.ClientOptions{Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		m := pmap.Mapping{Prog: prog, Vers: 1, Prot: pmap.IPProtoTCP}
		res, err := c.Call(context.Background(), pmap.Prog, 2, uint32(pmap.PmapProcGetPort), nil, m.AppendXDR(nil))
		if err != nil || len(res) != 4 {
			t.Fatalf("GETPORT %d: %x, %v", prog, res, err)
		}
		return uint32(res[2])<<8 | uint32(res[3])
	}
	if !set(300200) {
		t.Fatal("SET refused on an unwritable state directory (a boot-time registration must not be)")
	}
	if p := getport(300200); p != 2000 {
		t.Fatalf("GETPORT after the SET: %d, want 2000 (served from memory)", p)
	}
	d.WaitUntil(10*time.Second, "the LOG_ERR line", func() bool {
		return strings.Contains(d.Output(), "cannot save the registrations: ")
	})
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Fatalf("the daemon wrote into a directory it cannot write: %v", ents)
	}

	d.Cmd.Process.Signal(syscall.SIGKILL)
	d.Wait()
	if err := os.Chown(state, uid, gid); err != nil {
		t.Fatal(err)
	}
	d = nstest.StartDaemon(t, bin, args...)
	if p := getport(300200); p != 0 {
		t.Errorf("GETPORT after kill -9 and -w: %d — the undurable SET survived, the README says it does not", p)
	}
	if err := d.Stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"rpcbind.xdr", "portmap.xdr", "rpcbind.journal"} {
		if _, err := os.Stat(filepath.Join(state, f)); err != nil {
			t.Errorf("writable again: %v", fmt.Errorf("%s: %w", f, err))
		}
	}
}

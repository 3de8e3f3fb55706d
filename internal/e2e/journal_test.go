package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/nstest"
	"github.com/openrpcbind/rpcbind/pmap"
)

// TestStaleJournalAfterReferenceRun (issue 11 item 7): ours is killed (-9)
// with rstatd and rusersd registered; those services stop. Debian's
// rpcbind -w runs (it shows only program 100000) and exits cleanly, writing
// an rpcbind.xdr identical byte for byte to the base our journal names.
// Ours -w must not replay the journal over it — the registrations are dead
// — and must say so. On fee1c75 the two came back and nothing was logged.
func TestStaleJournalAfterReferenceRun(t *testing.T) {
	env, ok := Enter(t)
	if !ok {
		return
	}
	ref := env.Impls[0]
	ours := env.impl(t, "ours")
	nstest.FreshRun(t)
	rpcbXDR := filepath.Join(nstest.RPCBindDir, "rpcbind.xdr")

	d := nstest.StartDaemonNamed(t, "ours", ours.Path, "-f", "-w")
	for _, l := range []string{
		"tirpcclient set 100001 3 udp 0.0.0.0.3.232", // rstatd
		"tirpcclient set 100002 2 udp 0.0.0.0.3.233", // rusersd
	} {
		if r := env.Run(t, l); r.Exit != 0 {
			t.Fatalf("%s", r)
		}
	}
	if got := len(nonSelfV3(dumpV3(t))); got != 2 {
		t.Fatalf("%d registrations before the kill, want 2", got)
	}
	d.Cmd.Process.Signal(syscall.SIGKILL)
	if err := waitExit(d, 10*time.Second); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("after SIGKILL: %v", err)
	}
	base, err := os.ReadFile(rpcbXDR)
	if err != nil {
		t.Fatal(err)
	}

	r := nstest.StartDaemonNamed(t, "reference", ref.Path, "-f", "-w")
	if rows := nonSelfV3(dumpV3(t)); len(rows) != 0 {
		t.Errorf("the reference -w shows %v, want only program 100000", rows)
	}
	stopOK(t, r, syscall.SIGTERM)
	after, err := os.ReadFile(rpcbXDR)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, base) {
		// Then length and CRC would tell, and this test would not be the
		// scenario of the issue.
		t.Fatalf("the reference wrote %d bytes, not the %d of our base", len(after), len(base))
	}

	d = nstest.StartDaemonNamed(t, "ours", ours.Path, "-f", "-w")
	if rows := nonSelfV3(dumpV3(t)); len(rows) != 0 {
		t.Errorf("ours -w after the reference ran serves dead registrations: %v", rows)
	}
	stopOK(t, d, syscall.SIGTERM)
	if out := d.Output(); !strings.Contains(out, "voided, 2 records discarded: rpcbind.xdr was rewritten by another run") {
		t.Errorf("ours said %q, want the journal's voiding with its reason and count", out)
	}
}

// nonSelfV3 drops program 100000 from a v3 dump.
func nonSelfV3(es []pmap.RPCBEntry) []pmap.RPCBEntry {
	var out []pmap.RPCBEntry
	for _, e := range es {
		if e.Prog != pmap.Prog {
			out = append(out, e)
		}
	}
	return out
}

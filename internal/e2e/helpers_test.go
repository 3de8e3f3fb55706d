package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/nstest"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/internal/testenv"
	"github.com/openrpcbind/rpcbind/pmap"
)

// Program 100000 procedures used by these tests (RFC 1833).
const (
	procSet  = 1 // RPCBPROC_SET
	procDump = 4 // RPCBPROC_DUMP
)

// impl returns the implementation called name; the test fails when it is
// not built (is skipped in a reduced run, internal/testenv).
func (e *Env) impl(t testing.TB, name string) Impl {
	t.Helper()
	for _, im := range e.Impls {
		if im.Name == name {
			return im
		}
	}
	testenv.Missing(t, "e2e: the %q implementation", name)
	return Impl{}
}

// waitExit waits at most d for the process to exit and returns its status;
// an error mentioning the timeout if it is still running.
func waitExit(p *nstest.Daemon, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("still running after %v", d)
	}
}

// dumpV3 returns the daemon's table: a v3 DUMP over the local socket.
func dumpV3(t testing.TB) []pmap.RPCBEntry {
	t.Helper()
	c, err := rpc.Dial("unix", nstest.SocketPath, rpc.ClientOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("dial %s: %v", nstest.SocketPath, err)
	}
	defer c.Close()
	res, err := c.Call(context.Background(), pmap.Prog, 3, procDump, nil, nil)
	if err != nil {
		t.Fatalf("v3 DUMP: %v", err)
	}
	es, err := pmap.DecodeDumpV3(res)
	if err != nil {
		t.Fatalf("v3 DUMP reply: %v", err)
	}
	return es
}

// dumpV2 returns the v2 view: a v2 DUMP over the local socket.
func dumpV2(t testing.TB) []pmap.Mapping {
	t.Helper()
	c, err := rpc.Dial("unix", nstest.SocketPath, rpc.ClientOptions{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("dial %s: %v", nstest.SocketPath, err)
	}
	defer c.Close()
	res, err := c.Call(context.Background(), pmap.Prog, 2, procDump, nil, nil)
	if err != nil {
		t.Fatalf("v2 DUMP: %v", err)
	}
	ms, err := pmap.DecodeDumpV2(res)
	if err != nil {
		t.Fatalf("v2 DUMP reply: %v", err)
	}
	return ms
}

// stopOK stops p with SIGTERM and fails t unless it exits 0.
func stopOK(t testing.TB, p *nstest.Daemon, sig os.Signal) {
	t.Helper()
	if err := p.Stop(sig); err != nil {
		t.Errorf("%s: exit after %v: %v", p.Name, sig, err)
	}
}

// nonSelf returns the rows of an rpcinfo (v3 dump) listing that are not
// program 100000.
func nonSelf(rpcinfo string) []string {
	var rows []string
	for _, l := range strings.Split(strings.TrimRight(rpcinfo, "\n"), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] == "program" || f[0] == "100000" {
			continue
		}
		rows = append(rows, strings.Join(f, " "))
	}
	return rows
}

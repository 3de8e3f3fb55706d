package hardening

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/e2e"
	"github.com/openrpcbind/rpcbind/internal/nstest"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
	"github.com/openrpcbind/rpcbind/xdr"
)

// envHelper makes the test binary a registering service (pruning test).
const envHelper = "HARDENING_SERVICE_PROG"

func TestMain(m *testing.M) {
	if p := os.Getenv(envHelper); p != "" {
		serviceHelper(p)
		return
	}
	if n := os.Getenv(envHold); n != "" {
		holdHelper(n)
		return
	}
	os.Exit(e2e.Main(m))
}

var quick = rpc.ClientOptions{Timeout: 3 * time.Second, Retransmit: 300 * time.Millisecond}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// startOurs starts our daemon with extra flags on a fresh /run.
func startOurs(t *testing.T, env *e2e.Env, extra ...string) *nstest.Daemon {
	t.Helper()
	for _, im := range env.Impls {
		if im.Name == "ours" {
			im.Args = append(append([]string(nil), im.Args...), extra...)
			return env.Start(t, im)
		}
	}
	t.Fatal("our daemon was not built")
	return nil
}

// getport asks 127.0.0.1 for (100000, 2, tcp) over network.
func getport(t testing.TB, network string) (uint32, error) {
	c, err := rpc.Dial(network, "127.0.0.1:111", quick)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return getportOn(t, c, pmap.Prog)
}

func getportOn(t testing.TB, c *rpc.Client, prog uint32) (uint32, error) {
	m := pmap.Mapping{Prog: prog, Vers: 1, Prot: pmap.IPProtoTCP}
	if prog == pmap.Prog {
		m.Vers = 2
	}
	res, err := c.Call(ctx(t), pmap.Prog, 2, uint32(pmap.PmapProcGetPort), nil, m.AppendXDR(nil))
	if err != nil {
		return 0, err
	}
	var d xdr.Decoder
	d.Reset(res)
	return d.Uint32(), d.Err()
}

// vmRSS is VmRSS of pid in KiB.
func vmRSS(t testing.TB, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// fds is the number of open descriptors of pid.
func fds(t testing.TB, pid int) int {
	es, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// serviceHelper listens on TCP, registers (prog, 1, tcp) over the local
// socket, prints "registered PORT" and sleeps until killed.
func serviceHelper(prog string) {
	p, _ := strconv.ParseUint(prog, 10, 32)
	ln, err := netListen()
	if err != nil {
		println("helper:", err.Error())
		os.Exit(2)
	}
	port := ln.Port()
	c, err := rpc.Dial("unix", nstest.SocketPath, quick)
	if err != nil {
		println("helper:", err.Error())
		os.Exit(2)
	}
	uaddr := "127.0.0.1." + strconv.Itoa(port>>8) + "." + strconv.Itoa(port&0xff)
	res, err := c.Call(context.Background(), pmap.Prog, 4, uint32(pmap.RPCBProcSet), nil,
		pmap.AppendRPCB(nil, uint32(p), 1, "tcp", uaddr, ""))
	if err != nil || len(res) != 4 || res[3] != 1 {
		println("helper: SET failed")
		os.Exit(2)
	}
	os.Stdout.WriteString("registered " + strconv.Itoa(port) + "\n")
	for {
		time.Sleep(time.Hour)
	}
}

// startService runs serviceHelper for prog and waits for its registration.
func startService(t *testing.T, prog uint32) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), envHelper+"="+strconv.FormatUint(uint64(prog), 10))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "registered ") {
		t.Fatalf("service helper for %d: %q %v", prog, line, err)
	}
	return cmd
}

package hardening

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/e2e"
	"github.com/openrpcbind/rpcbind/internal/nstest"
	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
)

// envHold makes the test binary a local client (TestMain): it opens N
// connections to the local socket, asks GETPORT over each, prints how
// many were answered and holds them until its stdin closes.
const envHold = "HARDENING_HOLD_CONNS"

func holdHelper(n string) {
	count, _ := strconv.Atoi(n)
	answered := 0
	var held []*rpc.Client
	for range count {
		c, err := rpc.Dial("unix", nstest.SocketPath, quick)
		if err != nil {
			continue
		}
		held = append(held, c)
		m := pmap.Mapping{Prog: pmap.Prog, Vers: 2, Prot: pmap.IPProtoTCP}
		cx, cancel := context.WithTimeout(context.Background(), quick.Timeout)
		res, err := c.Call(cx, pmap.Prog, 2, uint32(pmap.PmapProcGetPort), nil, m.AppendXDR(nil))
		cancel()
		if err == nil && len(res) == 4 && res[2] == 0 && res[3] == 111 {
			answered++
		}
	}
	fmt.Println(answered)
	io.Copy(io.Discard, os.Stdin)
	for _, c := range held {
		c.Close()
	}
}

// TestMaxConnsPerUID: our daemon with --max-conns-per-uid=3. uid 65534
// opening 6 local-socket connections gets GETPORT answered on 3, the
// others closed at once; while it holds them, uid 65533 gets its 3 and
// root its 8 (root is exempt). Issue 11 item 6: local connections had
// no budget, so one local user could hold every slot.
func TestMaxConnsPerUID(t *testing.T) {
	env, ok := e2e.Enter(t)
	if !ok {
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if d == os.TempDir() {
			break
		}
		os.Chmod(d, 0o755)
	}
	bin := filepath.Join(dir, "client") // a copy the other uids can run
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	startOurs(t, env, "--max-conns-per-uid=3")
	for _, c := range []struct{ uid, n, want int }{
		{65534, 6, 3},
		{65533, 3, 3},
		{0, 8, 8},
	} {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), envHold+"="+strconv.Itoa(c.n))
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if c.uid != 0 {
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(c.uid), Gid: uint32(c.uid)}
		}
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stdin.Close(); cmd.Wait() })
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil {
			t.Fatalf("client as uid %d: %v", c.uid, err)
		}
		if got, err := strconv.Atoi(strings.TrimSpace(line)); err != nil || got != c.want {
			t.Errorf("uid %d opening %d local connections: %q answered, want %d", c.uid, c.n, strings.TrimSpace(line), c.want)
		}
	}
}

package nstest

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRunPattern(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"TestA", `^TestA$`},
		{"TestA/sub_1", `^TestA$/^sub_1$`},
		{"TestA/x.y+z", `^TestA$/^x\.y\+z$`},
	} {
		if got := runPattern(tc.in); got != tc.want {
			t.Errorf("runPattern(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPortBound(t *testing.T) {
	dir := t.TempDir()
	table := filepath.Join(dir, "tcp")
	// Two rows from a real /proc/net/tcp: a listener on :111 and a client socket.
	data := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 00000000:006F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n" +
		"   1: 0100007F:0808 0100007F:006F 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n"
	if err := os.WriteFile(table, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if !portBound(table, 111, true) {
		t.Error("port 111 listener not found")
	}
	if portBound(table, 2056, true) {
		t.Error("established socket on 2056 counted as a listener")
	}
	if !portBound(table, 2056, false) {
		t.Error("socket on 2056 not found without listen")
	}
}

// TestNamespace proves the child is isolated: /run is an empty tmpfs of its
// own, lo is up, and port 111 on 127.0.0.2 can be bound.
func TestNamespace(t *testing.T) {
	if !Enter(t) {
		return
	}
	var st unix.Statfs_t
	if err := unix.Statfs(RunDir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != unix.TMPFS_MAGIC {
		t.Errorf("/run is fs type %#x, want tmpfs", st.Type)
	}
	if _, err := os.Stat(SocketPath); err == nil {
		t.Errorf("%s exists in a fresh namespace", SocketPath)
	}
	fi, err := os.Stat(RPCBindDir)
	if err != nil || !fi.IsDir() {
		t.Fatalf("%s: %v", RPCBindDir, err)
	}
	for _, addr := range []string{"127.0.0.1:111", "127.0.0.2:111"} {
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			t.Fatalf("bind %s: %v", addr, err)
		}
		c.Close()
	}
	t.Run("sub", func(t *testing.T) {
		if !Enter(t) {
			t.Fatal("Enter reported outside within the child")
		}
	})
}

// TestReferenceDaemon starts Debian's rpcbind, checks its socket and that
// SIGTERM makes it write the warm-start files and exit 0 (spec §4.3, §4.4).
func TestReferenceDaemon(t *testing.T) {
	if !Enter(t) {
		return
	}
	d := StartDaemon(t, ReferenceRpcbind(t), "-f", "-w")
	fi, err := os.Stat(SocketPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o666 {
		t.Errorf("%s mode %v, want srw-rw-rw-", SocketPath, fi.Mode())
	}
	if err := d.Stop(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	for _, f := range []string{"rpcbind.xdr", "portmap.xdr"} {
		if _, err := os.Stat(filepath.Join(RPCBindDir, f)); err != nil {
			t.Errorf("warm-start file: %v", err)
		}
	}
	if out := d.Output(); out != "" {
		t.Errorf("output on a normal start and stop: %q", out)
	}
}

// TestStartNamedOutput: the output goroutine never reads Daemon.Name, so
// the old pattern of renaming after Start is not a data race (-race caught
// it), and the output is collected whole.
func TestStartNamedOutput(t *testing.T) {
	d := StartNamed(t, "echoer", "/bin/sh", "-c", "echo one; echo two")
	if d.Name != "echoer" {
		t.Errorf("Name %q, want echoer", d.Name)
	}
	d.Name = "renamed" // what e2e did before StartNamed existed
	if err := d.Wait(); err != nil {
		t.Fatal(err)
	}
	if out := d.Output(); out != "one\ntwo\n" {
		t.Errorf("output %q", out)
	}
}

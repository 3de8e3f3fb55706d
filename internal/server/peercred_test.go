package server

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestPeerCred: the local socket reports the connecting process's uid and
// pid (the pid is what pruning tracks).
func TestPeerCred(t *testing.T) {
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if uid, pid := peerCred(s); uid != os.Getuid() || pid != os.Getpid() {
		t.Errorf("peerCred = %d, %d; want %d, %d", uid, pid, os.Getuid(), os.Getpid())
	}
	tc, _ := net.Pipe()
	if uid, pid := peerCred(tc); uid != -1 || pid != 0 {
		t.Errorf("peerCred of a non-unix conn = %d, %d", uid, pid)
	}
}

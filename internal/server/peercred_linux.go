package server

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerUID returns the uid of the process that connected to an AF_UNIX
// socket (SO_PEERCRED), or -1.
func peerUID(nc net.Conn) int {
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return -1
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return -1
	}
	uid := -1
	rc.Control(func(fd uintptr) {
		if cr, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			uid = int(cr.Uid)
		}
	})
	return uid
}

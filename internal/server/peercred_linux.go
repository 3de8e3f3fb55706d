package server

import (
	"net"

	"golang.org/x/sys/unix"
)

// peerCred returns the uid and pid of the process that connected to an
// AF_UNIX socket (SO_PEERCRED, taken at connect time), or -1 and 0.
func peerCred(nc net.Conn) (uid, pid int) {
	uid = -1
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		return uid, 0
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return uid, 0
	}
	rc.Control(func(fd uintptr) {
		if cr, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			uid, pid = int(cr.Uid), int(cr.Pid)
		}
	})
	return uid, pid
}

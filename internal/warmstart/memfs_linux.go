package warmstart

import (
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// onMemoryFS reports whether f lives on tmpfs or ramfs (Debian's
// /run/rpcbind is on tmpfs). There fsync and fdatasync do nothing (the
// kernel's noop_fsync): the bytes are as durable as they will ever be once
// pwrite returns — they survive a kill -9 of the daemon, and nothing on
// these file systems survives a reboot. A failed fstatfs answers false, so
// the journal keeps its fdatasync.
func onMemoryFS(f *os.File) bool {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return false
	}
	return st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC
}

// memPwrite writes b at off with raw pwrite system calls, which do not go
// through the scheduler's system-call entry: on a busy VM that entry woke
// sysmon (a futex wake-up and a thread switch) for nearly every journalled
// change. Only for files on a memory file system (onMemoryFS), where a
// write is a copy into the page cache and does not wait for a device, so
// holding the P meanwhile is safe.
func memPwrite(f *os.File, b []byte, off int64) error {
	fd := f.Fd()
	for len(b) > 0 {
		n, _, e := unix.RawSyscall6(unix.SYS_PWRITE64, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(off), 0, 0)
		switch {
		case e == unix.EINTR:
			continue
		case e != 0:
			return &os.PathError{Op: "write", Path: f.Name(), Err: e}
		case n == 0:
			return &os.PathError{Op: "write", Path: f.Name(), Err: io.ErrShortWrite}
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

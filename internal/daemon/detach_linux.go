package daemon

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// EnvReadyFD marks the re-executed child of Detach and names the descriptor
// on which it reports readiness; EnvLockFD names the inherited lock.
const (
	EnvReadyFD = "RPCBIND_DETACHED_READY_FD"
	EnvLockFD  = "RPCBIND_DETACHED_LOCK_FD"
)

// Detached reports whether this process is the child Detach started.
func Detached() bool { return os.Getenv(EnvReadyFD) != "" }

// Detach stands for daemon(3), which Go cannot do (fork without exec is not
// safe in a multi-threaded runtime): the parent re-executes its own binary
// with the same arguments in a new session (setsid), then waits until the
// child reports readiness through a pipe (Ready) and returns its exit code:
// 0 when the child is serving, 1 when it died first (its messages went to
// the inherited stderr). The caller exits with that code. lock, the
// flocked lock file, is handed down: the child holds the same lock (flock
// belongs to the open file description), as daemon(3)'s child inherits it.
func Detach(lock *os.File) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "rpcbind: cannot find my executable: %v\n", err)
		return 1
	}
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "rpcbind: pipe: %v\n", err)
		return 1
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), EnvReadyFD+"=3", EnvLockFD+"=4")
	cmd.ExtraFiles = []*os.File{w, lock}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "rpcbind: cannot detach: %v\n", err)
		return 1
	}
	w.Close()
	var b [1]byte
	n, _ := io.ReadFull(r, b[:])
	if n == 1 && b[0] == 'R' {
		cmd.Process.Release()
		return 0
	}
	// The child exited (or closed the pipe) without being ready.
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			return ee.ExitCode()
		}
	}
	return 1
}

// Ready tells the parent of a detached child that it is serving, and points
// stdin, stdout and stderr at /dev/null (daemon(0,0)). Outside a detached
// child it does nothing.
func Ready() error {
	v := os.Getenv(EnvReadyFD)
	if v == "" {
		return nil
	}
	os.Unsetenv(EnvReadyFD)
	fd, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("daemon: bad %s=%q", EnvReadyFD, v)
	}
	f := os.NewFile(uintptr(fd), "ready")
	_, err = f.Write([]byte{'R'})
	f.Close()
	null, nerr := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if nerr == nil {
		for _, t := range []int{0, 1, 2} {
			syscall.Dup3(int(null.Fd()), t, 0)
		}
		null.Close()
	}
	return err
}

// InheritedLock returns the lock file handed down by Detach, or nil.
func InheritedLock() *os.File {
	v := os.Getenv(EnvLockFD)
	if v == "" {
		return nil
	}
	os.Unsetenv(EnvLockFD)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil
	}
	syscall.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "lock")
}

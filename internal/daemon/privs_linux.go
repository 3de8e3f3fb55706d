package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// LookupUser returns name's uid and primary gid. A missing user is an
// error: the reference refuses to start too ("cannot get uid of '_rpc'"),
// and running a network daemon as root because a package script did not
// run is the unsafe choice. --user and -s pick another account.
func LookupUser(name string) (uid, gid int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, fmt.Errorf("cannot get uid of '%s': %w (create the user, or choose one with --user or -s)", name, err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("user %s: bad uid/gid %q/%q", name, u.Uid, u.Gid)
	}
	if uid == 0 {
		return 0, 0, fmt.Errorf("user %s has uid 0: refusing to keep root privileges", name)
	}
	return uid, gid, nil
}

// EnvDropped marks a daemon that DropPrivileges re-executed: it starts
// with its privileges already dropped and its descriptors handed over.
const EnvDropped = "RPCBIND_PRIVS_DROPPED"

// maxCap bounds the walk over the bounding set: the kernel's last
// capability is 40 (CAP_CHECKPOINT_RESTORE, Linux 5.9); capabilities are
// numbered below 64 in every ABI. A kernel that answers past it is broken.
const maxCap = 63

// Handover is what a re-executed daemon needs from the one that dropped
// its privileges (see DropPrivileges): descriptors kept open at the same
// numbers, and environment variables saying what they are.
type Handover struct {
	FDs []int
	Env []string
}

// Dropped reports whether this process is a daemon that DropPrivileges
// re-executed, and clears the mark so that nothing it starts inherits it.
// The mark grants nothing: such a daemon must still pass VerifyDropped.
func Dropped() bool {
	if os.Getenv(EnvDropped) == "" {
		return false
	}
	os.Unsetenv(EnvDropped)
	return true
}

// DropPrivileges switches the process to uid and gid with no supplementary
// groups, as the reference (setgid, setgroups(0), setuid), and leaves
// every thread with empty capability sets (inheritable, permitted,
// effective, bounding, ambient) and no_new_privs set, so nothing can be
// regained by an exec (DECISIONS "privileges"). It fails closed: any step
// that does not succeed is an error, and the result is checked thread by
// thread (VerifyDropped) before it returns nil.
//
// The uid change reaches every thread in every build (Go applies it to all
// threads itself, or through glibc's setxid broadcast with cgo). The
// bounding set, the inheritable set and no_new_privs are per thread:
//
//   - without cgo (the shipped build, `make build`), syscall.AllThreadsSyscall
//     changes them on every thread at once, and DropPrivileges returns;
//   - with cgo, AllThreadsSyscall is unavailable (ENOTSUP) and there is no
//     way to run a prctl on every thread, so the calling thread is locked,
//     dropped completely, and made to execve the daemon's own binary
//     (/proc/self/exe) with the same arguments, h's descriptors and
//     environment, and EnvDropped set. execve leaves one thread, the
//     dropped one; every thread the new runtime creates inherits its
//     state. On success DropPrivileges does not return; the new daemon
//     calls Dropped and VerifyDropped.
func DropPrivileges(uid, gid int, h Handover) error {
	if uid == 0 {
		return errors.New("refusing to drop privileges to uid 0")
	}
	if _, _, e := syscall.AllThreadsSyscall(syscall.SYS_GETPID, 0, 0, 0); e == syscall.ENOTSUP {
		return dropAndReexec(uid, gid, h)
	}
	if err := emptyBoundingSet(allThreadsPrctl); err != nil {
		return err
	}
	if err := setIDs(uid, gid); err != nil {
		return err
	}
	if err := clearInheritable(allThreadsCapset); err != nil {
		return err
	}
	if err := allThreadsPrctl(unix.PR_SET_NO_NEW_PRIVS, 1); err != nil {
		return fmt.Errorf("cannot set no_new_privs: %w", err)
	}
	if syscall.Setuid(0) == nil {
		return fmt.Errorf("setuid %d did not drop root", uid)
	}
	return VerifyDropped()
}

// dropAndReexec is DropPrivileges with cgo: see there.
func dropAndReexec(uid, gid int, h Handover) error {
	// Never unlocked: the thread is about to be the only one left, or the
	// daemon is about to exit with the error.
	runtime.LockOSThread()
	thisThread := func(option, arg uintptr) error { return unix.Prctl(int(option), arg, 0, 0, 0) }
	if err := emptyBoundingSet(thisThread); err != nil {
		return err
	}
	if err := setIDs(uid, gid); err != nil {
		return err
	}
	if err := clearInheritable(func() error { return unix.Capset(&capHdr, &capData[0]) }); err != nil {
		return err
	}
	if err := thisThread(unix.PR_SET_NO_NEW_PRIVS, 1); err != nil {
		return fmt.Errorf("cannot set no_new_privs: %w", err)
	}
	if syscall.Setuid(0) == nil {
		return fmt.Errorf("setuid %d did not drop root", uid)
	}
	for _, fd := range h.FDs {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			return fmt.Errorf("cannot hand descriptor %d over: %w", fd, err)
		}
	}
	env := make([]string, 0, len(os.Environ())+len(h.Env)+1)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvDropped+"=") {
			env = append(env, kv)
		}
	}
	env = append(append(env, h.Env...), EnvDropped+"=1")
	err := syscall.Exec("/proc/self/exe", os.Args, env)
	return fmt.Errorf("cannot re-execute the dropped daemon (a build with cgo must, to drop every thread; `make build` builds without): %w", err)
}

// setIDs is the reference's setgroups(0), setgid, setuid; each reaches
// every thread.
func setIDs(uid, gid int) error {
	if err := syscall.Setgroups([]int{}); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid %d: %w", uid, err)
	}
	return nil
}

// emptyBoundingSet drops, with prctl, every capability the bounding set
// still holds, while CAP_SETPCAP is still effective. The walk ends where
// PR_CAPBSET_READ answers EINVAL (past the kernel's last capability); any
// other failure is an error, never a silent stop: without CAP_SETPCAP
// (e.g. a unit whose CapabilityBoundingSet= lacks it) the daemon refuses
// to start rather than run with a bounding set it could regain from.
func emptyBoundingSet(prctl func(option, arg uintptr) error) error {
	for c := 0; ; c++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if errors.Is(err, unix.EINVAL) && c > 0 {
			return nil
		}
		if err != nil || c > maxCap {
			return fmt.Errorf("cannot read capability %d of the bounding set: %v", c, err)
		}
		if in == 0 {
			continue
		}
		if err := prctl(unix.PR_CAPBSET_DROP, uintptr(c)); err != nil {
			hint := ""
			if errors.Is(err, unix.EPERM) {
				hint = " (CAP_SETPCAP is not in the bounding set; under systemd, add it to CapabilityBoundingSet=)"
			}
			return fmt.Errorf("cannot empty the capability bounding set: dropping capability %d: %w%s", c, err, hint)
		}
	}
}

// capHdr and capData are capset's arguments for an empty inheritable set
// (permitted and effective are empty already after setuid); package
// variables so that their addresses stay valid for AllThreadsSyscall.
var (
	capHdr  = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	capData [2]unix.CapUserData
)

// clearInheritable empties the inheritable set: execve keeps it, and
// setuid does not clear it.
func clearInheritable(capset func() error) error {
	if err := capset(); err != nil {
		return fmt.Errorf("cannot clear the inheritable capabilities: %w", err)
	}
	return nil
}

func allThreadsCapset() error {
	_, _, e := syscall.AllThreadsSyscall(syscall.SYS_CAPSET,
		uintptr(unsafe.Pointer(&capHdr)), uintptr(unsafe.Pointer(&capData[0])), 0)
	if e != 0 {
		return e
	}
	return nil
}

// allThreadsPrctl applies a per-thread prctl to every thread of the
// process (builds without cgo only).
func allThreadsPrctl(option, arg uintptr) error {
	_, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, option, arg, 0)
	if e != 0 {
		return e
	}
	return nil
}

// droppedFields are the /proc/PID/task/TID/status lines every thread must
// show after the drop.
var droppedFields = []struct{ name, want string }{
	{"CapInh", "0000000000000000"},
	{"CapPrm", "0000000000000000"},
	{"CapEff", "0000000000000000"},
	{"CapBnd", "0000000000000000"},
	{"CapAmb", "0000000000000000"},
	{"NoNewPrivs", "1"},
}

// VerifyDropped reads /proc/self/task/*/status and returns an error naming
// every thread and field that is not dropped: a capability set that is not
// empty, no_new_privs unset, or a uid 0. A thread created after the check
// inherits its creator's state, which the check has covered.
func VerifyDropped() error {
	return verifyTasks("/proc/self/task")
}

func verifyTasks(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("cannot verify the privilege drop: %w", err)
	}
	var bad []string
	for _, e := range ents {
		st, err := readStatus(dir + "/" + e.Name() + "/status")
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread has exited
		}
		if err != nil {
			return fmt.Errorf("cannot verify the privilege drop: %w", err)
		}
		for _, f := range droppedFields {
			if st[f.name] != f.want {
				bad = append(bad, fmt.Sprintf("thread %s %s %q (want %s)", e.Name(), f.name, st[f.name], f.want))
			}
		}
		if uids := strings.Fields(st["Uid"]); len(uids) != 4 || uids[0] == "0" || uids[1] == "0" || uids[2] == "0" || uids[3] == "0" {
			bad = append(bad, fmt.Sprintf("thread %s Uid %q (want no 0)", e.Name(), st["Uid"]))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("privileges not dropped on every thread: %s", strings.Join(bad, "; "))
	}
	return nil
}

// readStatus returns the "Name:\tvalue" lines of a status file.
func readStatus(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m, sc.Err()
}

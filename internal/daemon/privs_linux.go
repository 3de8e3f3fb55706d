package daemon

import (
	"fmt"
	"os/user"
	"strconv"
	"syscall"

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

// DropPrivileges switches the whole process (every thread: Go 1.16+ applies
// setuid/setgid to all threads) to uid and gid with no supplementary
// groups, as the reference (setgid, setgroups(0), setuid). Changing all
// three uids away from 0 clears the permitted, effective and ambient
// capability sets; the bounding set is emptied too and no_new_privs set,
// so nothing can be regained by an exec.
func DropPrivileges(uid, gid int) error {
	if uid == 0 {
		return fmt.Errorf("refusing to drop privileges to uid 0")
	}
	// Empty the bounding set while we still have CAP_SETPCAP.
	for c := 0; c <= 63; c++ {
		if err := prctlAllThreads(unix.PR_CAPBSET_DROP, uintptr(c)); err != nil {
			break // EINVAL past the last capability the kernel knows
		}
	}
	if err := syscall.Setgroups([]int{}); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid %d: %w", uid, err)
	}
	if err := prctlAllThreads(unix.PR_SET_NO_NEW_PRIVS, 1); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	// Regaining root must fail now.
	if syscall.Setuid(0) == nil {
		return fmt.Errorf("setuid %d did not drop root", uid)
	}
	return nil
}

// prctlAllThreads applies a per-thread prctl to every thread of the
// process. syscall.AllThreadsSyscall needs a binary without cgo; with cgo
// only the calling thread is changed (the uid change itself always covers
// every thread), which is hardening lost, not privilege kept.
func prctlAllThreads(option, arg uintptr) error {
	_, _, e := syscall.AllThreadsSyscall(syscall.SYS_PRCTL, option, arg, 0)
	if e == syscall.ENOTSUP {
		return unix.Prctl(int(option), arg, 0, 0, 0)
	}
	if e != 0 {
		return e
	}
	return nil
}

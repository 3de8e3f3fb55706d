package hostsaccess

import (
	"errors"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Debian's paths (libwrap HOSTS_ALLOW / HOSTS_DENY).
const (
	AllowPath = "/etc/hosts.allow"
	DenyPath  = "/etc/hosts.deny"
)

// CheckInterval is the longest an edit takes to apply: at most one request
// per interval stats the files.
const CheckInterval = time.Second

// Checker answers hosts.allow/hosts.deny questions from a parsed snapshot.
// It is safe for concurrent use.
type Checker struct {
	allowPath, denyPath string
	logf                func(string)

	cur atomic.Pointer[snapshot]
	// due is set CheckInterval after the last check by a one-shot timer;
	// the next request clears it and stats the files. A request costs one
	// atomic load (time.Now alone would cost more than the match), and an
	// idle daemon runs no timer at all.
	due atomic.Bool
	arm func() // schedules due; tests replace it to drive the clock

	mu     sync.Mutex // serialises reloads and logged
	logged map[string]bool
}

// snapshot is one parse of both files.
type snapshot struct {
	allow, deny     []rule
	allowID, denyID fileID
	denyUnreadable  bool // libwrap: an unreadable hosts.deny denies
	needText        bool // some pattern matches the address text
}

// fileID is what a cheap stat compares: a change of any field re-parses.
type fileID struct {
	err              string // "" when stat succeeded; "missing" for ENOENT
	dev, ino         uint64
	size             int64
	mtimeNs, ctimeNs int64
}

// New returns a Checker for the two files ("" means the Debian paths) and
// parses them now. logf receives each problem once per distinct message
// (unsupported patterns, bad options, unreadable files); nil discards.
func New(allowPath, denyPath string, logf func(string)) *Checker {
	if allowPath == "" {
		allowPath = AllowPath
	}
	if denyPath == "" {
		denyPath = DenyPath
	}
	if logf == nil {
		logf = func(string) {}
	}
	c := &Checker{
		allowPath: allowPath, denyPath: denyPath, logf: logf,
		logged: map[string]bool{},
	}
	c.arm = func() { time.AfterFunc(CheckInterval, func() { c.due.Store(true) }) }
	c.Reload()
	return c
}

// Allowed reports whether a client at addr may be served (hosts_access for
// daemon "rpcbind"). Callers skip it for the local socket and for NULL. It
// allocates nothing; at most once per CheckInterval it stats both files and
// re-parses them if they changed.
func (c *Checker) Allowed(addr netip.Addr) bool {
	if c.due.Load() {
		c.maybeReload()
	}
	s := c.cur.Load()
	a := addr.Unmap().WithZone("")
	var tb [64]byte // numeric text, only for '*'/'?' patterns
	var text []byte
	if s.needText {
		text = a.AppendTo(tb[:0])
	}
	for i := range s.allow {
		if s.allow[i].clients.match(a, text) {
			return s.allow[i].verdict != vDeny
		}
	}
	for i := range s.deny {
		if s.deny[i].clients.match(a, text) {
			return s.deny[i].verdict == vAllow
		}
	}
	return !s.denyUnreadable
}

// maybeReload is the time-gated check: the request that clears due stats
// the files; the others go on with the current snapshot.
func (c *Checker) maybeReload() {
	if !c.due.CompareAndSwap(true, false) {
		return
	}
	s := c.cur.Load()
	if statID(c.allowPath) == s.allowID && statID(c.denyPath) == s.denyID {
		c.arm()
		return
	}
	c.Reload()
}

// Reload re-reads both files now, whatever their stat says, and restarts
// the check interval.
func (c *Checker) Reload() {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &snapshot{}
	var allowErr, denyErr error
	s.allowID, s.allow, allowErr = c.load(c.allowPath)
	s.denyID, s.deny, denyErr = c.load(c.denyPath)
	if allowErr != nil {
		c.noteLocked("hostsaccess: cannot read " + c.allowPath + ": " + allowErr.Error() + "; ignored, as libwrap")
	}
	if denyErr != nil {
		s.denyUnreadable = true
		c.noteLocked("hostsaccess: cannot read " + c.denyPath + ": " + denyErr.Error() + "; everyone not granted by " + c.allowPath + " is denied, as libwrap")
	}
	s.needText = hasGlob(s.allow) || hasGlob(s.deny)
	c.cur.Store(s)
	c.due.Store(false)
	c.arm()
}

// load stats then reads one file. A missing file has no rules and no
// error; any other failure is returned.
func (c *Checker) load(path string) (fileID, []rule, error) {
	id := statID(path)
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return id, nil, nil
		}
		return id, nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFile+1))
	if errors.Is(err, syscall.EISDIR) {
		return id, nil, nil // fopen succeeds, fgets reads nothing
	}
	if err != nil {
		return id, nil, err
	}
	return id, parseFile(path, data, c.noteLocked), nil
}

// noteLocked logs msg unless it was logged before; c.mu is held.
func (c *Checker) noteLocked(msg string) {
	if c.logged[msg] {
		return
	}
	if len(c.logged) < maxLogged {
		c.logged[msg] = true
	}
	c.logf(msg)
}

// maxLogged bounds the set of remembered messages (a file full of distinct
// bad tokens must not grow it without limit).
const maxLogged = 1024

func statID(path string) fileID {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return fileID{err: "missing"}
		}
		return fileID{err: err.Error()}
	}
	return fileID{
		dev: uint64(st.Dev), ino: uint64(st.Ino), size: st.Size,
		mtimeNs: st.Mtim.Nano(), ctimeNs: st.Ctim.Nano(),
	}
}

func hasGlob(rs []rule) bool {
	for i := range rs {
		for l := rs[i].clients; l != nil; l = l.except {
			for _, p := range l.pats {
				if p.kind == kGlob {
					return true
				}
			}
		}
	}
	return false
}

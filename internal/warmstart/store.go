package warmstart

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultCompactFloor is the journal length (in records) below which it is
// never compacted, whatever the table's size.
const DefaultCompactFloor = 1024

// MaxJournalSize caps how much of a journal Recover reads. Compaction keeps
// a healthy journal near twice the table's encoded size.
const MaxJournalSize = 256 << 20

// fdatasync is unix.Fdatasync; tests count the calls.
var fdatasync = unix.Fdatasync

// ErrNotStarted is returned by Append before Recover or Compact told the
// Store the full table.
var ErrNotStarted = errors.New("warmstart: store not started (call Recover or Compact first)")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("warmstart: store closed")

// Options tune a Store; the zero value is the reference's behaviour.
type Options struct {
	// CompactFloor: the journal is compacted once it holds more than
	// max(2 × live entries, CompactFloor) records; 0 = DefaultCompactFloor.
	CompactFloor int
	// Chown makes written files owned by UID:GID (the reference's files
	// belong to the unprivileged user it runs as, _rpc).
	Chown    bool
	UID, GID int
	// Logf receives notes on events that lose nothing, such as a torn
	// journal tail after a kill -9. Nil discards them.
	Logf func(format string, args ...any)
}

// Store keeps the table durable in one directory. It holds its own copy of
// the table (the journal's view) so that it can compact without asking the
// registry. Safe for concurrent use.
//
// Every disk failure is returned as an error and leaves the Store usable:
// the in-memory view is always updated, and the next Append or Compact tries
// again to make everything durable.
type Store struct {
	dir  string
	opts Options

	mu          sync.Mutex
	set         *entrySet
	started     bool     // set holds the full table
	f           *os.File // journal, open read-write; nil when none
	memfs       bool     // f is on tmpfs or ramfs: no fdatasync needed (onMemoryFS)
	off         int64    // end of the last durable record
	records     int      // records in the journal
	compactAt   int      // after a failed compaction, wait for this many records
	journalOK   bool     // base files + journal == set
	closed      bool
	err         error     // last persistence failure, nil when healthy
	lastTry     time.Time // when Append last tried to heal by compacting
	compactions int       // full writes of the table, for tests
	buf         []byte
}

// RetryBackoff is how often Append, while the journal is broken, tries to
// heal it by writing the whole table. Between tries an Append costs O(1):
// the change is kept in memory and reported, not rewritten with the table
// (which made 10,000 SETs on a read-only directory quadratic).
const RetryBackoff = time.Second

// Open prepares a Store for dir (Debian: DefaultDir), creating it with mode
// 0770 if missing. Disk problems are reported by the later calls, not here.
func Open(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("warmstart: open: empty directory name")
	}
	if opts.CompactFloor <= 0 {
		opts.CompactFloor = DefaultCompactFloor
	}
	if err := os.Mkdir(dir, DirMode); err == nil && opts.Chown {
		_ = os.Chown(dir, opts.UID, opts.GID) // best effort, as mkdir_warmstart
	}
	return &Store{dir: dir, opts: opts, set: newEntrySet(nil)}, nil
}

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

func (s *Store) owner() *owner {
	if !s.opts.Chown {
		return nil
	}
	return &owner{s.opts.UID, s.opts.GID}
}

func (s *Store) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// Err reports the last persistence failure, or nil once everything acknowledged
// is durable again (for systemd's STATUS=).
func (s *Store) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Recover loads the saved table: rpcbind.xdr (or, when it is absent or
// undecodable, portmap.xdr), then the journal replayed on top, and returns
// the entries without program 100000 in registration order. It must be the
// first call after Open. The returned entries are always the best that
// could be recovered: a non-nil error reports damage (an undecodable file,
// which is unlinked; a corrupt or stale journal) for the caller to log, and
// the caller goes on with the entries. The caller should then Compact the
// table it builds (fresh self entries plus these).
func (s *Store) Recover() ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.started {
		return nil, errors.New("warmstart: recover: store already started")
	}
	var errs []error
	es, bs, err := s.loadBase()
	if err != nil {
		errs = append(errs, err)
	}
	set := newEntrySet(es)
	if err := s.replay(set, bs); err != nil {
		errs = append(errs, err)
	}
	s.set, s.started = set, true
	out := set.entries()
	out = slices.DeleteFunc(out, func(e Entry) bool { return e.Prog == rpcbProg })
	return out, errors.Join(errs...)
}

// loadBase reads the C-format files. rpcbind.xdr is the master; portmap.xdr
// is read only when rpcbind.xdr is absent (DECISIONS "the v2 view"). An
// undecodable rpcbind.xdr is unlinked and the daemon starts from scratch,
// as the reference does: portmap.xdr would bring back only the v2 view,
// with the owners lost.
func (s *Store) loadBase() ([]Entry, base, error) {
	var errs []error
	rp := s.path(RPCBFile)
	b, id, err := readCappedID(rp)
	if err == nil {
		es, derr := DecodeRPCBList(b)
		if derr == nil {
			return es, baseOf(baseRPCB, b, id), nil
		}
		return nil, base{}, s.discard(rp, derr)
	} else if !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	pp := s.path(PmapFile)
	b, id, err = readCappedID(pp)
	if err == nil {
		ms, derr := DecodePmapList(b)
		if derr == nil {
			return EntriesFromPmap(ms), baseOf(basePmap, b, id), errors.Join(errs...)
		}
		errs = append(errs, s.discard(pp, derr))
	} else if !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return nil, base{}, errors.Join(errs...)
}

func (s *Store) discard(path string, derr error) error {
	err := error(&DecodeError{Path: path, Err: derr})
	if uerr := os.Remove(path); uerr != nil {
		err = errors.Join(err, fmt.Errorf("warmstart: unlink undecodable file: %w", uerr))
	}
	return err
}

// replay applies the journal to set when it was written against bs, and
// leaves s ready to append: the existing journal cut to its valid records,
// or a fresh one.
func (s *Store) replay(set *entrySet, bs base) error {
	jp := s.path(JournalFile)
	var errs []error
	b, err := readJournal(jp)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		errs = append(errs, err)
	default:
		hb, herr := parseHeader(b)
		if errors.Is(herr, errJournalV1) {
			if n := countRecords(b, headerLenV1); n > 0 {
				errs = append(errs, fmt.Errorf("warmstart: journal %s: voided, %d records discarded: "+
					"written by an older version that did not record which %s it applies to", jp, n, RPCBFile))
			}
			break
		}
		if herr != nil {
			errs = append(errs, fmt.Errorf("warmstart: journal %s: header invalid, journal ignored", jp))
			break
		}
		if hb != bs {
			// A journal is replayed only over the exact base it was
			// written against (DECISIONS "warm start, our journal"). An
			// empty one loses nothing: the normal case after the C daemon
			// ran in between (a roll-back, then an upgrade again).
			if n := countRecords(b, headerLen); n > 0 {
				errs = append(errs, fmt.Errorf("warmstart: journal %s: voided, %d records discarded: %s", jp, n, hb.why(bs)))
			}
			break
		}
		n := 0
		end, serr := scanRecords(b, headerLen, func(op Op, e *Entry) { set.apply(op, e); n++ })
		switch {
		case serr == nil:
		case errors.Is(serr, ErrTornRecord):
			s.logf("warmstart: journal %s: dropped a torn last record (%d bytes)", jp, len(b)-end)
		default:
			errs = append(errs, fmt.Errorf("warmstart: journal %s: replay stopped, %d bytes lost: %w", jp, len(b)-end, serr))
		}
		if err := s.continueJournal(jp, int64(end), n); err != nil {
			return errors.Join(append(errs, err)...)
		}
		return errors.Join(errs...)
	}
	if err := s.startJournal(bs); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// countRecords is the number of valid records of a journal from off.
func countRecords(b []byte, off int) int {
	n := 0
	scanRecords(b, off, func(Op, *Entry) { n++ })
	return n
}

func readJournal(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("warmstart: read: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("warmstart: read %s: %w", path, err)
	}
	if fi.Size() > MaxJournalSize {
		return nil, fmt.Errorf("warmstart: journal %s: %d bytes, more than %d: ignored", path, fi.Size(), MaxJournalSize)
	}
	b := make([]byte, fi.Size()) // sized from the file system, capped above
	n, err := f.ReadAt(b, 0)
	if err != nil && n != len(b) {
		return nil, fmt.Errorf("warmstart: read %s: %w", path, err)
	}
	return b, nil
}

// continueJournal reopens the journal for appending after its last valid
// record, cutting off anything after it so new records are never hidden
// behind a torn one.
func (s *Store) continueJournal(path string, end int64, records int) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err == nil {
		if err = f.Truncate(end); err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		s.journalOK = false
		s.err = fmt.Errorf("warmstart: reopen journal %s: %w", path, err)
		return s.err
	}
	s.setJournal(f, end, records)
	return nil
}

// startJournal replaces the journal with an empty one applying to bs.
func (s *Store) startJournal(bs base) error {
	f, _, err := createAtomic(s.path(JournalFile), appendHeader(nil, bs), s.owner())
	if err != nil {
		s.journalOK, s.err = false, err
		return err
	}
	s.setJournal(f, headerLen, 0)
	return nil
}

func (s *Store) setJournal(f *os.File, off int64, records int) {
	if s.f != nil {
		s.f.Close()
	}
	s.f, s.off, s.records, s.compactAt, s.journalOK = f, off, records, 0, true
	s.memfs = onMemoryFS(f)
}

// Append records one accepted change and returns once it is durable (one
// write and one fdatasync; on tmpfs or ramfs the write alone). The registry
// calls it under its write lock, before acknowledging the change. On error
// the change is still kept in the Store's view and a later call (at most
// once per RetryBackoff) or Retry heals it by compacting; the caller keeps
// serving. A compaction that fails after the record was made durable (the
// directory turned read-only while the journal stayed open, say) is
// returned too, and Err reports it until a compaction succeeds.
func (s *Store) Append(op Op, e Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if op != OpSet && op != OpUnset {
		return fmt.Errorf("warmstart: append: invalid op %d", uint32(op))
	}
	s.set.apply(op, &e)
	if !s.started {
		return ErrNotStarted
	}
	if !s.journalOK {
		// The journal is behind the table (an earlier write failed):
		// writing the whole table makes everything durable at once, tried
		// at most once per RetryBackoff (Retry, on the daemon's timer,
		// tries too).
		if now := time.Now(); s.err == nil || now.Sub(s.lastTry) >= RetryBackoff {
			s.lastTry = now
			return s.compactLocked()
		}
		return s.err
	}
	s.buf = appendRecord(s.buf[:0], op, &e)
	// Write at the end of the last good record: a failed, partial write
	// is overwritten by the next compaction's fresh journal. On tmpfs or
	// ramfs the write alone makes the record as durable as fdatasync
	// would (a no-op there, see onMemoryFS): one system call per change
	// instead of two, and none through the scheduler.
	var err error
	if s.memfs {
		err = memPwrite(s.f, s.buf, s.off)
	} else if _, err = s.f.WriteAt(s.buf, s.off); err == nil {
		err = fdatasync(int(s.f.Fd()))
	}
	if err != nil {
		s.journalOK = false
		s.err = fmt.Errorf("warmstart: append to %s: %w", s.path(JournalFile), err)
		return s.err
	}
	s.off += int64(len(s.buf))
	s.records++
	if s.compactAt == 0 {
		s.err = nil
	}
	if s.records > max(2*s.set.len(), s.opts.CompactFloor, s.compactAt) {
		if err := s.compactLocked(); err != nil {
			// This record is durable, but the C-format files are stale
			// and the journal grows: report it (Err stays set until a
			// compaction succeeds, so Retry keeps trying) and try again
			// CompactFloor records later.
			s.compactAt = s.records + s.opts.CompactFloor
			return err
		}
	}
	return nil
}

// Compact makes snapshot the whole table (self entries included, in
// registration order): it writes rpcbind.xdr and portmap.xdr atomically and
// starts an empty journal. Call it after Recover (or, without -w, instead
// of it) and on exit, with no concurrent Append for the same table.
func (s *Store) Compact(snapshot []Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.set, s.started = newEntrySet(snapshot), true
	return s.compactLocked()
}

func (s *Store) compactLocked() error {
	s.compactions++
	es := s.set.entries()
	rb := AppendRPCBList(nil, es)
	id, err := writeAtomicID(s.path(RPCBFile), rb, s.owner())
	if err != nil {
		s.err = err
		return err
	}
	// The old journal no longer applies to rpcbind.xdr: start a new one,
	// naming this very write of it, before anything else.
	if err := s.startJournal(baseOf(baseRPCB, rb, id)); err != nil {
		s.err = err
		return err
	}
	// portmap.xdr only matters for a roll-back to the C daemon.
	if err := writeAtomic(s.path(PmapFile), AppendPmapList(nil, PmapView(es)), s.owner()); err != nil {
		s.err = err
		return err
	}
	s.err = nil
	return nil
}

// Retry tries again to make everything acknowledged durable after a
// persistence failure (DECISIONS: keep retrying): it rewrites the state
// files and starts a fresh journal from the Store's view. It does nothing
// and returns nil when nothing is pending. Safe to call concurrently with
// Append, e.g. from a timer.
func (s *Store) Retry() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if !s.started || (s.err == nil && s.journalOK) {
		return nil
	}
	return s.compactLocked()
}

// Close compacts the table into the C-format files, as the reference writes
// them on exit, and closes the journal.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	var err error
	if s.started {
		err = s.compactLocked()
	}
	if s.f != nil {
		if cerr := s.f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("warmstart: close journal: %w", cerr)
		}
		s.f = nil
	}
	return err
}

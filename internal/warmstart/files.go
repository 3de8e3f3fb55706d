package warmstart

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/openrpcbind/rpcbind/xdr"
)

// File names inside the state directory, as the reference (warmstart.c).
const (
	DefaultDir  = "/run/rpcbind" // Debian's RPCBIND_STATEDIR
	RPCBFile    = "rpcbind.xdr"
	PmapFile    = "portmap.xdr"
	JournalFile = "rpcbind.journal"
)

// Limits for decoding state files; files are trusted less than memory.
const (
	// MaxString caps netid, addr and owner: libtirpc's xdr_rpcb uses
	// RPC_MAXDATASIZE since the CVE-2017-8779 fix.
	MaxString = xdr.MaxDataSize
	// MaxEntries caps a decoded list. The reference has no cap; a table
	// this large would already be a memory-exhaustion attack.
	MaxEntries = 1 << 20
	// MaxFileSize caps how much of a state file is read: MaxEntries of
	// typical size (about 60 bytes) fit well within it.
	MaxFileSize = 64 << 20
	// FileMode is the mode of every file written (reference: umask 077).
	FileMode fs.FileMode = 0o600
	// DirMode is used when the state directory is missing (reference
	// mkdir_warmstart/write_warmstart: mkdir 0770).
	DirMode fs.FileMode = 0o770
)

// Program numbers and protocols the conversions need (RFC 1833).
const (
	rpcbProg   = 100000
	ipProtoTCP = 6
	ipProtoUDP = 17
)

// PmapOwner is the owner given to entries converted from portmap.xdr, which
// carries none. It is the owner the reference records for a caller it cannot
// identify (getowner), and what a v2 SET from an unprivileged loopback port
// gets; "superuser" can still remove such entries.
const PmapOwner = "unknown"

// Mapping is one v2 registration, struct pmap of RFC 1833 §3.1.
type Mapping struct {
	Prog, Vers, Prot, Port uint32
}

// Sentinel errors.
var (
	ErrTooMany  = errors.New("warmstart: list longer than MaxEntries")
	ErrTooLarge = errors.New("warmstart: file larger than MaxFileSize")
)

// DecodeError reports an undecodable state file. Its text carries the
// reference's message ("xdr_<path>: failed").
type DecodeError struct {
	Path string
	Err  error
}

func (e *DecodeError) Error() string {
	return "warmstart: xdr_" + e.Path + ": failed: " + e.Err.Error()
}

func (e *DecodeError) Unwrap() error { return e.Err }

// AppendRPCBList appends es as an XDR rpcblist_ptr: for each entry a TRUE
// "more" word then rpcb{prog, vers, netid, addr, owner}; then FALSE.
func AppendRPCBList(b []byte, es []Entry) []byte {
	for i := range es {
		b = xdr.AppendUint32(b, 1)
		b = appendRPCB(b, &es[i])
	}
	return xdr.AppendUint32(b, 0)
}

func appendRPCB(b []byte, e *Entry) []byte {
	b = xdr.AppendUint32(b, e.Prog)
	b = xdr.AppendUint32(b, e.Vers)
	b = xdr.AppendString(b, e.Netid)
	b = xdr.AppendString(b, e.Addr)
	return xdr.AppendString(b, e.Owner)
}

// AppendPmapList appends ms as an XDR pmaplist.
func AppendPmapList(b []byte, ms []Mapping) []byte {
	for _, m := range ms {
		b = xdr.AppendUint32(b, 1)
		b = xdr.AppendUint32(b, m.Prog)
		b = xdr.AppendUint32(b, m.Vers)
		b = xdr.AppendUint32(b, m.Prot)
		b = xdr.AppendUint32(b, m.Port)
	}
	return xdr.AppendUint32(b, 0)
}

// DecodeRPCBList decodes an rpcblist_ptr. Bytes after the terminating FALSE
// are ignored, as xdrstdio decoding in the reference ignores them.
func DecodeRPCBList(b []byte) ([]Entry, error) {
	var es []Entry
	d := xdr.NewDecoder(b)
	for d.More() {
		if len(es) == MaxEntries {
			return nil, ErrTooMany
		}
		var e Entry
		decodeRPCB(d, &e)
		if d.Err() != nil {
			break
		}
		es = append(es, e)
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	return es, nil
}

func decodeRPCB(d *xdr.Decoder, e *Entry) {
	e.Prog = d.Uint32()
	e.Vers = d.Uint32()
	e.Netid = d.String(MaxString)
	e.Addr = d.String(MaxString)
	e.Owner = d.String(MaxString)
}

// DecodePmapList decodes a pmaplist; trailing bytes are ignored.
func DecodePmapList(b []byte) ([]Mapping, error) {
	var ms []Mapping
	d := xdr.NewDecoder(b)
	for d.More() {
		if len(ms) == MaxEntries {
			return nil, ErrTooMany
		}
		m := Mapping{Prog: d.Uint32(), Vers: d.Uint32(), Prot: d.Uint32(), Port: d.Uint32()}
		if d.Err() != nil {
			break
		}
		ms = append(ms, m)
	}
	if err := d.Err(); err != nil {
		return nil, err
	}
	return ms, nil
}

// ReadRPCB reads and decodes an rpcbind.xdr file, self entries included.
// A missing file gives an error satisfying errors.Is(err, fs.ErrNotExist);
// an undecodable one a *DecodeError.
func ReadRPCB(path string) ([]Entry, error) {
	b, err := readCapped(path)
	if err != nil {
		return nil, err
	}
	es, err := DecodeRPCBList(b)
	if err != nil {
		return nil, &DecodeError{Path: path, Err: err}
	}
	return es, nil
}

// ReadPmap reads and decodes a portmap.xdr file.
func ReadPmap(path string) ([]Mapping, error) {
	b, err := readCapped(path)
	if err != nil {
		return nil, err
	}
	ms, err := DecodePmapList(b)
	if err != nil {
		return nil, &DecodeError{Path: path, Err: err}
	}
	return ms, nil
}

// WriteRPCB writes es to path atomically with mode 0600.
func WriteRPCB(path string, es []Entry) error {
	return writeAtomic(path, AppendRPCBList(nil, es), nil)
}

// WritePmap writes ms to path atomically with mode 0600.
func WritePmap(path string, ms []Mapping) error {
	return writeAtomic(path, AppendPmapList(nil, ms), nil)
}

func readCapped(path string) ([]byte, error) {
	b, _, err := readCappedID(path)
	return b, err
}

// readCappedID is readCapped that also returns the identity of the file
// read (fstat of the descriptor read from).
func readCappedID(path string) ([]byte, fileID, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileID{}, fmt.Errorf("warmstart: read: %w", err)
	}
	defer f.Close()
	id, err := statID(f)
	if err != nil {
		return nil, fileID{}, err
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fileID{}, fmt.Errorf("warmstart: read %s: %w", path, err)
	}
	if len(b) > MaxFileSize {
		return nil, fileID{}, fmt.Errorf("%w: %s", ErrTooLarge, path)
	}
	return b, id, nil
}

// owner says who should own written files; nil leaves the process's ids.
type owner struct{ uid, gid int }

// writeAtomic replaces path with data: a temporary file in the same
// directory, fsync, rename over path, fsync of the directory. A reader (or a
// crash) sees either the old or the new file, never a mix.
func writeAtomic(path string, data []byte, own *owner) error {
	_, err := writeAtomicID(path, data, own)
	return err
}

// writeAtomicID is writeAtomic returning the identity of the file written,
// as fstat sees it once the rename is durable.
func writeAtomicID(path string, data []byte, own *owner) (fileID, error) {
	f, id, err := createAtomic(path, data, own)
	if err != nil {
		return fileID{}, err
	}
	return id, f.Close()
}

// createAtomic is writeAtomic returning the new file, open read-write, and
// its identity after the rename (which changes its ctime).
func createAtomic(path string, data []byte, own *owner) (_ *os.File, _ fileID, err error) {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return nil, fileID{}, fmt.Errorf("warmstart: write %s: %w", path, err)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if err != nil {
			f.Close()
			if !renamed {
				os.Remove(tmp)
			}
			err = fmt.Errorf("warmstart: write %s: %w", path, err)
		}
	}()
	if err = f.Chmod(FileMode); err != nil {
		return nil, fileID{}, err
	}
	if own != nil {
		if err = f.Chown(own.uid, own.gid); err != nil {
			return nil, fileID{}, err
		}
	}
	if _, err = f.Write(data); err != nil {
		return nil, fileID{}, err
	}
	if err = f.Sync(); err != nil {
		return nil, fileID{}, err
	}
	if err = os.Rename(tmp, path); err != nil {
		return nil, fileID{}, err
	}
	renamed = true
	if err = syncDir(dir); err != nil {
		return nil, fileID{}, err
	}
	id, err := statID(f)
	if err != nil {
		return nil, fileID{}, err
	}
	return f, id, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// PmapView derives the v2 list from entries as the reference's
// add_pmaplist mirrors a SET: only netids exactly "udp" or "tcp"
// (case-sensitive) whose address sscanf("%d.%d.%d.%d.%d.%d") reads six
// numbers; port = (p1&0xff)<<8 + (p2&0xff); the host part is discarded.
func PmapView(es []Entry) []Mapping {
	var ms []Mapping
	for i := range es {
		var prot uint32
		switch es[i].Netid {
		case "udp":
			prot = ipProtoUDP
		case "tcp":
			prot = ipProtoTCP
		default:
			continue
		}
		port, ok := scanPort(es[i].Addr)
		if !ok {
			continue
		}
		ms = append(ms, Mapping{Prog: es[i].Prog, Vers: es[i].Vers, Prot: prot, Port: port})
	}
	return ms
}

// EntriesFromPmap converts portmap.xdr mappings to entries as the
// reference's v2 SET (pmapproc_change) would have stored them: netid "tcp"
// or "udp" from the protocol, addr "0.0.0.0.p1.p2" from the port truncated
// to 16 bits, owner PmapOwner. Other protocols have no netid and are skipped.
func EntriesFromPmap(ms []Mapping) []Entry {
	var es []Entry
	for _, m := range ms {
		var netid string
		switch m.Prot {
		case ipProtoTCP:
			netid = "tcp"
		case ipProtoUDP:
			netid = "udp"
		default:
			continue
		}
		addr := fmt.Sprintf("0.0.0.0.%d.%d", (m.Port>>8)&0xff, m.Port&0xff)
		es = append(es, Entry{Prog: m.Prog, Vers: m.Vers, Netid: netid, Addr: addr, Owner: PmapOwner})
	}
	return es
}

// scanPort emulates glibc sscanf(s, "%d.%d.%d.%d.%d.%d") == 6 and returns
// the port built from the last two numbers.
func scanPort(s string) (uint32, bool) {
	var v [6]int64
	i := 0
	for k := range v {
		if k > 0 {
			if i >= len(s) || s[i] != '.' {
				return 0, false
			}
			i++
		}
		n, next, ok := scanInt(s, i)
		if !ok {
			return 0, false
		}
		v[k], i = n, next
	}
	return uint32(v[4]&0xff)<<8 | uint32(v[5]&0xff), true
}

// scanInt is %d: optional white space, optional sign, at least one digit,
// converted like strtol (saturating at the int64 range) then to int.
func scanInt(s string, i int) (int64, int, bool) {
	for i < len(s) && (s[i] == ' ' || s[i] >= '\t' && s[i] <= '\r') {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	var u uint64
	over := false
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		d := uint64(s[i] - '0')
		if u > (1<<63-d)/10 {
			over = true
		} else {
			u = u*10 + d
		}
		i++
	}
	if i == start {
		return 0, i, false
	}
	var n int64
	switch {
	case over && neg:
		n = -1 << 63
	case over:
		n = 1<<63 - 1
	case neg:
		n = -int64(u)
	default:
		n = int64(u)
	}
	return int64(int32(n)), i, true
}

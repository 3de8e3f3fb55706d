package ratelimit

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openrpcbind/rpcbind/internal/rpc"
	"github.com/openrpcbind/rpcbind/pmap"
)

// Defaults (see doc.go for the reasons).
const (
	DefaultRate        = 20   // amplifying replies per second per prefix
	DefaultBurst       = 100  // per prefix
	DefaultGlobalRate  = 2000 // amplifying replies per second, all prefixes
	DefaultGlobalBurst = 4000
	DefaultV4Prefix    = 24
	DefaultV6Prefix    = 56
	DefaultSets        = 2048 // × Ways entries
	Ways               = 8    // entries per set
	// MaxSets bounds the table whatever the configuration (2^20 × 8 ×
	// 24 B = 192 MiB would be absurd; 2^16 sets is 12 MiB).
	MaxSets = 1 << 16
)

// Config sets the limits. Zero fields take the defaults; there is no
// "0 = unlimited": Off turns the limiter off.
type Config struct {
	Off         bool    // every reply passes (RefuseLists still applies)
	Rate        float64 // per prefix, replies per second
	Burst       int     // per prefix
	GlobalRate  float64 // all non-local prefixes together
	GlobalBurst int
	V4Prefix    int // bits, 1..32
	V6Prefix    int // bits, 1..128
	Sets        int // table sets of Ways entries; rounded up to a power of two, at most MaxSets

	// RefuseLists refuses UDP DUMP and GETSTAT calls from non-local
	// sources (see RefuseUDP).
	RefuseLists bool
}

// Stats are cumulative counters.
type Stats struct {
	Limited uint64 // replies Allow refused
	Refused uint64 // calls RefuseUDP refused
	Evicted uint64 // prefixes dropped from a full set
}

// Limiter is safe for concurrent use. Its memory is allocated by New and
// never grows.
type Limiter struct {
	cfg        Config
	interval   int64 // ns between tokens, per prefix
	tolerance  int64 // burst × interval
	gInterval  int64
	gTolerance int64
	v4Mask     uint32
	v6Hi, v6Lo uint64
	seed       maphash.Seed
	setMask    uint64
	sets       []set
	global     atomic.Int64 // GCRA theoretical arrival time, unix ns
	limited    atomic.Uint64
	refused    atomic.Uint64
	evicted    atomic.Uint64
}

type set struct {
	mu sync.Mutex
	e  [Ways]entry
}

// entry is one prefix's bucket. tat is the GCRA theoretical arrival time
// (unix ns); 0 marks a free slot. An entry whose tat is in the past is a
// full bucket, the same state as a fresh one, so evicting the smallest tat
// loses the least.
type entry struct {
	hi, lo uint64
	tat    int64
}

// New returns a Limiter for cfg.
func New(cfg Config) *Limiter {
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.GlobalRate <= 0 {
		cfg.GlobalRate = DefaultGlobalRate
	}
	if cfg.GlobalBurst <= 0 {
		cfg.GlobalBurst = DefaultGlobalBurst
	}
	if cfg.V4Prefix <= 0 || cfg.V4Prefix > 32 {
		cfg.V4Prefix = DefaultV4Prefix
	}
	if cfg.V6Prefix <= 0 || cfg.V6Prefix > 128 {
		cfg.V6Prefix = DefaultV6Prefix
	}
	n := DefaultSets
	if cfg.Sets > 0 {
		n = 1
		for n < cfg.Sets && n < MaxSets {
			n <<= 1
		}
	}
	cfg.Sets = n
	l := &Limiter{
		cfg:       cfg,
		interval:  nsPer(cfg.Rate),
		gInterval: nsPer(cfg.GlobalRate),
		v4Mask:    ^uint32(0) << (32 - cfg.V4Prefix),
		seed:      maphash.MakeSeed(),
		setMask:   uint64(n - 1),
		sets:      make([]set, n),
	}
	l.tolerance = l.interval * int64(cfg.Burst)
	l.gTolerance = l.gInterval * int64(cfg.GlobalBurst)
	l.v6Hi, l.v6Lo = mask128(cfg.V6Prefix)
	return l
}

// Config returns the configuration in use, defaults filled in.
func (l *Limiter) Config() Config { return l.cfg }

func nsPer(rate float64) int64 {
	ns := float64(time.Second) / rate
	if ns < 1 {
		return 1
	}
	if ns > math.MaxInt32*float64(time.Second) {
		return math.MaxInt32 * int64(time.Second)
	}
	return int64(ns)
}

func mask128(bits int) (hi, lo uint64) {
	if bits >= 64 {
		return ^uint64(0), ^uint64(0) << (128 - bits)
	}
	return ^uint64(0) << (64 - bits), 0
}

// local reports the sources that are never limited: the local socket (an
// invalid address) and loopback (DECISIONS.md "non-local").
func local(src netip.Addr) bool {
	return !src.IsValid() || src.Unmap().IsLoopback()
}

// Allow reports whether a UDP reply of replyLen bytes to a request of
// reqLen bytes from src may be sent at now. Replies no larger than their
// request and replies to local sources always may. It allocates nothing.
func (l *Limiter) Allow(src netip.Addr, reqLen, replyLen int, now time.Time) bool {
	if replyLen <= reqLen || l.cfg.Off || local(src) {
		return true
	}
	t := now.UnixNano()
	if !l.prefixAllow(src, t) || !l.globalAllow(t) {
		l.limited.Add(1)
		return false
	}
	return true
}

// gcra updates a theoretical arrival time; ok is false when the bucket is
// empty (tat unchanged).
func gcra(tat, now, interval, tolerance int64) (int64, bool) {
	if tat < now {
		tat = now
	}
	if tat+interval-now > tolerance {
		return tat, false
	}
	return tat + interval, true
}

func (l *Limiter) globalAllow(now int64) bool {
	for {
		old := l.global.Load()
		tat, ok := gcra(old, now, l.gInterval, l.gTolerance)
		if !ok {
			return false
		}
		if l.global.CompareAndSwap(old, tat) {
			return true
		}
	}
}

// key returns src's prefix as 128 bits; IPv4 (and IPv4-mapped) prefixes
// carry a tag in hi so that they never equal an IPv6 prefix.
func (l *Limiter) key(src netip.Addr) (hi, lo uint64) {
	src = src.Unmap()
	if src.Is4() {
		b := src.As4()
		return 1<<63 | 0xffff, uint64(binary.BigEndian.Uint32(b[:]) & l.v4Mask)
	}
	b := src.As16()
	return binary.BigEndian.Uint64(b[:8]) & l.v6Hi, binary.BigEndian.Uint64(b[8:]) & l.v6Lo
}

func (l *Limiter) prefixAllow(src netip.Addr, now int64) bool {
	hi, lo := l.key(src)
	var kb [16]byte
	binary.LittleEndian.PutUint64(kb[:8], hi)
	binary.LittleEndian.PutUint64(kb[8:], lo)
	s := &l.sets[maphash.Bytes(l.seed, kb[:])&l.setMask]
	s.mu.Lock()
	defer s.mu.Unlock()
	victim := 0
	for i := range s.e {
		e := &s.e[i]
		if e.tat != 0 && e.hi == hi && e.lo == lo {
			tat, ok := gcra(e.tat, now, l.interval, l.tolerance)
			e.tat = tat
			return ok
		}
		if e.tat < s.e[victim].tat {
			victim = i
		}
	}
	e := &s.e[victim]
	if e.tat != 0 {
		l.evicted.Add(1)
	}
	tat, _ := gcra(0, now, l.interval, l.tolerance) // a fresh bucket is full
	*e = entry{hi: hi, lo: lo, tat: tat}
	return true
}

// RefuseUDP reports whether a UDP call req from src must be refused
// because Config.RefuseLists is set, src is not local and req is a
// program 100000 DUMP (v2, v3, v4) or GETSTAT (v4). The caller answers
// AUTH_TOOWEAK (rpc.AppendAuthError(out, xid, rpc.AuthTooWeak)) instead of
// dispatching. It allocates nothing.
func (l *Limiter) RefuseUDP(src netip.Addr, req []byte) bool {
	if !l.cfg.RefuseLists || local(src) {
		return false
	}
	var h rpc.CallHeader
	if _, err := rpc.ParseCall(req, &h); err != nil || h.Prog != pmap.Prog {
		return false
	}
	if !IsListCall(h.Vers, h.Proc) {
		return false
	}
	l.refused.Add(1)
	return true
}

// IsListCall reports whether (vers, proc) of program 100000 lists the
// table or the statistics: PMAPPROC_DUMP, RPCBPROC_DUMP, RPCBPROC_GETSTAT.
func IsListCall(vers, proc uint32) bool {
	switch vers {
	case pmap.Vers2, pmap.Vers3:
		return proc == uint32(pmap.PmapProcDump)
	case pmap.Vers4:
		return proc == uint32(pmap.RPCBProcDump) || proc == uint32(pmap.RPCBProcGetStat)
	}
	return false
}

// Stats returns the counters.
func (l *Limiter) Stats() Stats {
	return Stats{Limited: l.limited.Load(), Refused: l.refused.Load(), Evicted: l.evicted.Load()}
}

package service

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/openrpcbind/rpcbind/pmap"
)

// The statistics of fee1c75, kept as the oracle of TestStatModel: a pool
// with an O(n) eviction scan and a sorting snapshot, simple enough to be
// obviously the reference's counting.

type oldStatEntry struct {
	key                        statKey
	success, failure, indirect int32
	created, touched           uint64 // sequence numbers: wire order, eviction
}

// oldStatList is rpcbs_addrlist or rpcbs_rmtcalllist of one version: a fixed
// pool with an index, so that updating an existing key does not allocate.
// The reference prepends new keys; the wire order is newest-created first.
type oldStatList struct {
	idx  map[statKey]int
	ents []oldStatEntry
}

func (l *oldStatList) get(k statKey, seq uint64) (e *oldStatEntry, created bool) {
	if i, ok := l.idx[k]; ok {
		e = &l.ents[i]
		e.touched = seq
		return e, false
	}
	if l.idx == nil {
		l.idx = make(map[statKey]int, MaxStatEntries)
		l.ents = make([]oldStatEntry, 0, MaxStatEntries)
	}
	i := len(l.ents)
	if i < MaxStatEntries {
		l.ents = append(l.ents, oldStatEntry{})
	} else {
		i = 0
		for j := range l.ents {
			if l.ents[j].touched < l.ents[i].touched {
				i = j
			}
		}
		delete(l.idx, l.ents[i].key)
	}
	l.idx[k] = i
	l.ents[i] = oldStatEntry{key: k, created: seq, touched: seq}
	return &l.ents[i], true
}

// oldWireOrder returns the entries newest-created first.
func (l *oldStatList) oldWireOrder() []oldStatEntry {
	out := append([]oldStatEntry(nil), l.ents...)
	sort.Slice(out, func(a, b int) bool { return out[a].created > out[b].created })
	return out
}

// stats is rpcb_stat_byvers with the reference's counting rules
// (rpcb_stat.c; spec §1.8).
type oldStats struct {
	info  [pmap.NumStatVers][pmap.NumProcs]atomic.Int32
	set   [pmap.NumStatVers]atomic.Int32
	unset [pmap.NumStatVers]atomic.Int32

	mu   sync.Mutex
	seq  uint64
	addr [pmap.NumStatVers]oldStatList
	rmt  [pmap.NumStatVers]oldStatList
}

// procInfo is rpcbs_procinfo: the caller has checked proc against the
// version's highest procedure.
func (s *oldStats) procInfo(vi int, proc uint32) { s.info[vi][proc].Add(1) }

func (s *oldStats) setDone(vi int, ok bool) {
	if ok {
		s.set[vi].Add(1)
	}
}

func (s *oldStats) unsetDone(vi int, ok bool) {
	if ok {
		s.unset[vi].Add(1)
	}
}

// getAddr is rpcbs_getaddr: success when the answer is a non-empty address.
// An unknown netid is not recorded.
func (s *oldStats) getAddr(vi int, prog, vers uint32, netid string, success bool) {
	ni, ok := netidIndex(netid)
	if !ok {
		return
	}
	s.mu.Lock()
	s.seq++
	e, _ := s.addr[vi].get(statKey{prog: prog, vers: vers, netid: ni}, s.seq)
	if success {
		e.success++
	} else {
		e.failure++
	}
	s.mu.Unlock()
}

// rmtCall is rpcbs_rmtcall, including its quirk: a new entry starts with
// indirect = 1 whatever the procedure, and only INDIRECT adds to it later.
func (s *oldStats) rmtCall(vi int, indirect bool, prog, vers, proc uint32, netid string, success bool) {
	ni, ok := netidIndex(netid)
	if !ok {
		return
	}
	s.mu.Lock()
	s.seq++
	e, created := s.rmt[vi].get(statKey{prog: prog, vers: vers, proc: proc, netid: ni}, s.seq)
	if success {
		e.success++
	} else {
		e.failure++
	}
	if created {
		e.indirect = 1
	} else if indirect {
		e.indirect++
	}
	s.mu.Unlock()
}

// snapshot builds the GETSTAT result.
func (s *oldStats) snapshot() *[pmap.NumStatVers]pmap.Stat {
	var out [pmap.NumStatVers]pmap.Stat
	for vi := range out {
		st := &out[vi]
		for p := range st.Info {
			st.Info[p] = s.info[vi][p].Load()
		}
		st.SetInfo = s.set[vi].Load()
		st.UnsetInfo = s.unset[vi].Load()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for vi := range out {
		for _, e := range s.addr[vi].oldWireOrder() {
			out[vi].Addr = append(out[vi].Addr, pmap.AddrStat{
				Prog: e.key.prog, Vers: e.key.vers,
				Success: e.success, Failure: e.failure,
				Netid: statNetids[e.key.netid],
			})
		}
		for _, e := range s.rmt[vi].oldWireOrder() {
			out[vi].Rmt = append(out[vi].Rmt, pmap.RmtStat{
				Prog: e.key.prog, Vers: e.key.vers, Proc: e.key.proc,
				Success: e.success, Failure: e.failure, Indirect: e.indirect,
				Netid: statNetids[e.key.netid],
			})
		}
	}
	return &out
}

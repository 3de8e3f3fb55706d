package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/openrpcbind/rpcbind/pmap"
)

// The output formats of the reference, column for column. Each writer
// takes decoded lists; none has a fixed-size buffer, so hostile lengths
// only make longer lines (the C -s and -l paths overflow stack buffers
// here: CVE-2026-16277, CVE-2026-16461).

const (
	hdrDump      = "   program version netid     address                service    owner\n"
	hdrDumpShort = "   program version(s) netid(s)                         service     owner\n"
	hdrPmap      = "   program vers proto   port  service\n"
	hdrAddrList  = "   program vers  tp_family/name/class    address\t\t  service\n"
	noPrograms   = "No remote programs registered.\n"
)

// formatDump is the rpcinfo [host] table (RPCBDUMP).
func formatDump(es []pmap.RPCBEntry, db rpcDB) string {
	if len(es) == 0 {
		return noPrograms
	}
	var sb strings.Builder
	sb.WriteString(hdrDump)
	for _, e := range es {
		fmt.Fprintf(&sb, "%10d%5d    %-9s %-22s", e.Prog, e.Vers, e.Netid, e.Addr)
		name, ok := db.byNumber(e.Prog)
		if !ok {
			name = "-"
		}
		fmt.Fprintf(&sb, " %-10s %s\n", name, e.Owner)
	}
	return sb.String()
}

// shortEntry is one program of the -s summary.
type shortEntry struct {
	prog   uint32
	owner  string
	vers   []uint32 // most recent first, as the reference prepends
	netids []string // likewise
}

// maxNetidsColumn is the size of the reference's netid buffer less its NUL:
// the netid column is cut there (strncat with a shrinking budget).
const maxNetidsColumn = 255

// formatDumpShort is the rpcinfo -s summary (RPCBDUMP_SHORT): programs in
// order of first appearance; versions and netids merged, each list in the
// reverse order of first appearance; the owner of the program's first
// entry.
func formatDumpShort(es []pmap.RPCBEntry, db rpcDB) string {
	if len(es) == 0 {
		return noPrograms
	}
	var rs []*shortEntry
	index := map[uint32]*shortEntry{}
	for _, e := range es {
		r := index[e.Prog]
		if r == nil {
			r = &shortEntry{prog: e.Prog, owner: e.Owner}
			index[e.Prog] = r
			rs = append(rs, r)
		}
		if !containsU32(r.vers, e.Vers) {
			r.vers = append([]uint32{e.Vers}, r.vers...)
		}
		if !containsStr(r.netids, e.Netid) {
			r.netids = append([]string{e.Netid}, r.netids...)
		}
	}
	var sb strings.Builder
	sb.WriteString(hdrDumpShort)
	for _, r := range rs {
		fmt.Fprintf(&sb, "%10d  ", r.prog)
		vs := make([]string, len(r.vers))
		for i, v := range r.vers {
			vs[i] = strconv.Itoa(int(int32(v))) // the reference keeps versions in an int
		}
		fmt.Fprintf(&sb, "%-10s", strings.Join(vs, ","))
		fmt.Fprintf(&sb, "%-32s", netidColumn(r.netids))
		name, ok := db.byNumber(r.prog)
		if !ok {
			name = "-"
		}
		fmt.Fprintf(&sb, " %-11s %s\n", name, r.owner)
	}
	return sb.String()
}

// netidColumn joins netids with commas within maxNetidsColumn bytes, cut
// exactly where the reference's strncat budget cuts.
func netidColumn(netids []string) string {
	var b []byte
	budget := maxNetidsColumn
	for i, n := range netids {
		if len(n) < budget {
			b = append(b, n...)
			budget -= len(n)
		} else {
			b = append(b, n[:budget]...)
			break
		}
		if i+1 < len(netids) && budget > 1 {
			b = append(b, ',')
			budget--
		}
	}
	return string(b)
}

func containsU32(s []uint32, v uint32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func containsStr(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// formatPmapDump is the rpcinfo -p table.
func formatPmapDump(ms []pmap.Mapping, db rpcDB) string {
	if len(ms) == 0 {
		return noPrograms
	}
	var sb strings.Builder
	sb.WriteString(hdrPmap)
	for _, m := range ms {
		fmt.Fprintf(&sb, "%10d%5d", m.Prog, m.Vers)
		switch m.Prot {
		case pmap.IPProtoUDP:
			fmt.Fprintf(&sb, "%6s", "udp")
		case pmap.IPProtoTCP:
			fmt.Fprintf(&sb, "%6s", "tcp")
		default:
			fmt.Fprintf(&sb, "%6d", m.Prot)
		}
		fmt.Fprintf(&sb, "%7d", m.Port)
		if name, ok := db.byNumber(m.Prog); ok {
			sb.WriteString("  " + name + "\n")
		} else {
			sb.WriteString("\n")
		}
	}
	return sb.String()
}

// pmapToRPCB converts a v2 DUMP as the reference's fallback does when a
// server speaks only version 2: netid from the protocol (or the number in
// "%6ld"), owner "unknown", address 0.0.0.0 and the port's two bytes.
func pmapToRPCB(ms []pmap.Mapping) []pmap.RPCBEntry {
	es := make([]pmap.RPCBEntry, 0, len(ms))
	for _, m := range ms {
		netid := fmt.Sprintf("%6d", m.Prot)
		switch m.Prot {
		case pmap.IPProtoUDP:
			netid = "udp"
		case pmap.IPProtoTCP:
			netid = "tcp"
		}
		es = append(es, pmap.RPCBEntry{
			Prog: m.Prog, Vers: m.Vers, Netid: netid, Owner: "unknown",
			Addr: fmt.Sprintf("0.0.0.0.%d.%d", m.Port>>8&0xff, m.Port&0xff),
		})
	}
	return es
}

// formatAddrList is the rpcinfo -l table.
func formatAddrList(prog, vers uint32, es []pmap.Entry, db rpcDB) string {
	if len(es) == 0 {
		return noPrograms
	}
	name, ok := db.byNumber(prog)
	if !ok {
		name = "-"
	}
	var sb strings.Builder
	sb.WriteString(hdrAddrList)
	for _, e := range es {
		class := "cots_ord"
		switch e.Semantics {
		case pmap.NCTPIClts:
			class = "clts"
		case pmap.NCTPICots:
			class = "cots"
		}
		fmt.Fprintf(&sb, "%10d%3d    %-24s%-24s %-13s\n", prog, vers,
			e.Protofmly+"/"+e.Proto+"/"+class+" ", e.Maddr, name)
	}
	return sb.String()
}

// Statistics (-m).

const tabStop = 8

var (
	pmapHdr  = []string{"NULL", "SET", "UNSET", "GETPORT", "DUMP", "CALLIT"}
	rpcb3Hdr = []string{"NULL", "SET", "UNSET", "GETADDR", "DUMP", "CALLIT", "TIME", "U2T", "T2U"}
	rpcb4Hdr = []string{"NULL", "SET", "UNSET", "GETADDR", "DUMP", "CALLIT", "TIME",
		"U2T", "T2U", "VERADDR", "INDRECT", "GETLIST", "GETSTAT"}
)

// spaces is the reference's: n blanks, or none when n is out of 1..64.
func spaces(n int) string {
	if n <= 0 || n > 64 {
		return ""
	}
	return strings.Repeat(" ", n)
}

// statRow formats procedures lo..hi of s under their names: two lines, the
// names and the counts, each field padded to the next tab stop.
func statRow(sb *strings.Builder, s *pmap.Stat, names []string, lo, hi int, v4 bool) {
	var line strings.Builder
	for i := lo; i <= hi; i++ {
		field := ""
		switch pmap.Proc(i) {
		case pmap.RPCBProcSet:
			field = strconv.Itoa(int(s.SetInfo)) + "/"
		case pmap.RPCBProcUnset:
			field = strconv.Itoa(int(s.UnsetInfo)) + "/"
		case pmap.RPCBProcGetAddr:
			var cnt int32
			for _, a := range s.Addr {
				cnt += a.Success
			}
			field = strconv.Itoa(int(cnt)) + "/"
		case pmap.RPCBProcCallit:
			var cnt int32
			for _, r := range s.Rmt {
				cnt += r.Success
			}
			field = strconv.Itoa(int(cnt)) + "/"
		}
		n := s.Info[i]
		if v4 && pmap.Proc(i) == pmap.RPCBProcGetAddr {
			// rpcbind counts GETADDRLIST successes as GETADDR ones.
			n += s.Info[pmap.RPCBProcGetAddrList]
		}
		field += strconv.Itoa(int(n))
		w := tabStop * (1 + len(field)/tabStop)
		sb.WriteString(names[i] + spaces(w-len(names[i])))
		line.WriteString(field + spaces(w-len(field)))
	}
	sb.WriteString("\n" + line.String() + "\n")
}

func progName(db rpcDB, prog uint32) string {
	if name, ok := db.byNumber(prog); ok {
		return fmt.Sprintf("%-16s", name)
	}
	return fmt.Sprintf("%-16d", int32(prog))
}

func rmtCallStat(sb *strings.Builder, s *pmap.Stat, v4 bool, db rpcDB) {
	if v4 {
		sb.WriteString("prog\t\tvers\tproc\tnetid\tindirect success failure\n")
	} else {
		sb.WriteString("prog\t\tvers\tproc\tnetid\tsuccess\tfailure\n")
	}
	for _, r := range s.Rmt {
		sb.WriteString(progName(db, r.Prog))
		fmt.Fprintf(sb, "%d\t%d\t%s\t", int32(r.Vers), int32(r.Proc), r.Netid)
		if v4 {
			fmt.Fprintf(sb, "%d\t ", r.Indirect)
		}
		fmt.Fprintf(sb, "%d\t%d\n", r.Success, r.Failure)
	}
}

func getAddrStat(sb *strings.Builder, s *pmap.Stat, db rpcDB) {
	sb.WriteString("prog\t\tvers\tnetid\t  success\tfailure\n")
	for _, a := range s.Addr {
		sb.WriteString(progName(db, a.Prog))
		fmt.Fprintf(sb, "%d\t%s\t  %-12d\t%d\n", int32(a.Vers), a.Netid, a.Success, a.Failure)
	}
}

// formatStat is the rpcinfo -m report.
func formatStat(st *[pmap.NumStatVers]pmap.Stat, db rpcDB) string {
	var sb strings.Builder
	s2, s3, s4 := &st[0], &st[1], &st[2]
	sb.WriteString("PORTMAP (version 2) statistics\n")
	statRow(&sb, s2, pmapHdr, 0, 5, false)
	sb.WriteString("\n")
	if s2.Info[pmap.PmapProcCallit] != 0 {
		sb.WriteString("PMAP_RMTCALL call statistics\n")
		rmtCallStat(&sb, s2, false, db)
		sb.WriteString("\n")
	}
	if s2.Info[pmap.PmapProcGetPort] != 0 {
		sb.WriteString("PMAP_GETPORT call statistics\n")
		getAddrStat(&sb, s2, db)
		sb.WriteString("\n")
	}
	sb.WriteString("RPCBIND (version 3) statistics\n")
	statRow(&sb, s3, rpcb3Hdr, 0, 8, false)
	sb.WriteString("\n")
	if s3.Info[pmap.RPCBProcCallit] != 0 {
		sb.WriteString("RPCB_RMTCALL (version 3) call statistics\n")
		rmtCallStat(&sb, s3, false, db)
		sb.WriteString("\n")
	}
	if s3.Info[pmap.RPCBProcGetAddr] != 0 {
		sb.WriteString("RPCB_GETADDR (version 3) call statistics\n")
		getAddrStat(&sb, s3, db)
		sb.WriteString("\n")
	}
	sb.WriteString("RPCBIND (version 4) statistics\n")
	statRow(&sb, s4, rpcb4Hdr, 0, 8, true)
	statRow(&sb, s4, rpcb4Hdr, 9, 12, true)
	if s4.Info[pmap.RPCBProcCallit] != 0 || s4.Info[pmap.RPCBProcIndirect] != 0 {
		sb.WriteString("\nRPCB_RMTCALL (version 4) call statistics\n")
		rmtCallStat(&sb, s4, true, db)
	}
	if s4.Info[pmap.RPCBProcGetAddr] != 0 {
		sb.WriteString("\nRPCB_GETADDR (version 4) call statistics\n")
		getAddrStat(&sb, s4, db)
	}
	return sb.String()
}

package warmstart

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const testdata = "../../testdata/warmstart"

// selfEntries is what Debian's rpcbind 1.2.6 registers for itself, in its
// DUMP order (spec §1.5), as captured in testdata/warmstart/*/rpcbind.xdr.
var selfEntries = []Entry{
	ent(100000, 4, "tcp6", "::.0.111", "superuser"),
	ent(100000, 3, "tcp6", "::.0.111", "superuser"),
	ent(100000, 4, "udp6", "::.0.111", "superuser"),
	ent(100000, 3, "udp6", "::.0.111", "superuser"),
	ent(100000, 4, "tcp", "0.0.0.0.0.111", "superuser"),
	ent(100000, 3, "tcp", "0.0.0.0.0.111", "superuser"),
	ent(100000, 2, "tcp", "0.0.0.0.0.111", "superuser"),
	ent(100000, 4, "udp", "0.0.0.0.0.111", "superuser"),
	ent(100000, 3, "udp", "0.0.0.0.0.111", "superuser"),
	ent(100000, 2, "udp", "0.0.0.0.0.111", "superuser"),
	ent(100000, 4, "local", "/run/rpcbind.sock", "superuser"),
	ent(100000, 3, "local", "/run/rpcbind.sock", "superuser"),
}

var selfPmap = []Mapping{
	{100000, 4, 6, 111}, {100000, 3, 6, 111}, {100000, 2, 6, 111},
	{100000, 4, 17, 111}, {100000, 3, 17, 111}, {100000, 2, 17, 111},
}

// registered are the registrations made in testdata/warmstart/README.md,
// with the owners the reference recorded.
var registered = []Entry{
	ent(200001, 1, "tcp", "0.0.0.0.3.232", "superuser"),     // v3 SET, AF_UNIX uid 0
	ent(200001, 1, "udp", "0.0.0.0.3.233", "superuser"),     // v3 SET, AF_UNIX uid 0
	ent(200001, 2, "udp6", "::.3.234", "superuser"),         // not mirrored in v2
	ent(200002, 1, "local", "/run/test.sock", "superuser"),  // not mirrored in v2
	ent(200003, 1, "tcp", "10.9.8.7.3.235", "65534"),        // AF_UNIX uid 65534; v2 keeps the port only
	ent(300001, 1, "tcp", "0.0.0.0.3.232", "unknown"),       // v2 SET from an unprivileged port
	ent(300001, 1, "udp", "0.0.0.0.3.233", "superuser"),     // v2 SET from port 700
	ent(200005, 3, "tcp", "127.0.0.1.255.255", "superuser"), // after (200004,1,tcp6) was SET then UNSET
}

var registeredPmap = []Mapping{
	{200001, 1, 6, 1000}, {200001, 1, 17, 1001}, {200003, 1, 6, 1003},
	{300001, 1, 6, 1000}, {300001, 1, 17, 1001}, {200005, 3, 6, 65535},
}

func ent(prog, vers uint32, netid, addr, owner string) Entry {
	return Entry{Prog: prog, Vers: vers, Netid: netid, Addr: addr, Owner: owner}
}

func cat[T any](a, b []T) []T { return append(append([]T(nil), a...), b...) }

func golden(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReferenceFiles(t *testing.T) {
	tests := []struct {
		dir  string
		rpcb []Entry
		pmap []Mapping
		size [2]int // reference file sizes (spec §4.3: fresh 660 B, 124 B)
	}{
		{"fresh", selfEntries, selfPmap, [2]int{660, 124}},
		{"registered", cat(selfEntries, registered), cat(selfPmap, registeredPmap), [2]int{1100, 244}},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			rb := golden(t, tt.dir+"/rpcbind.xdr")
			pb := golden(t, tt.dir+"/portmap.xdr")
			if len(rb) != tt.size[0] || len(pb) != tt.size[1] {
				t.Fatalf("golden sizes %d, %d; want %v", len(rb), len(pb), tt.size)
			}
			es, err := ReadRPCB(filepath.Join(testdata, tt.dir, "rpcbind.xdr"))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(es, tt.rpcb) {
				t.Errorf("ReadRPCB:\n got %v\nwant %v", es, tt.rpcb)
			}
			ms, err := ReadPmap(filepath.Join(testdata, tt.dir, "portmap.xdr"))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ms, tt.pmap) {
				t.Errorf("ReadPmap:\n got %v\nwant %v", ms, tt.pmap)
			}
			// Our encoders reproduce the reference's bytes, after a prefix.
			pre := []byte{0xde, 0xad}
			if got := AppendRPCBList(pre, tt.rpcb); !bytes.Equal(got[2:], rb) || got[0] != 0xde {
				t.Errorf("AppendRPCBList differs from the reference file")
			}
			if got := AppendPmapList(pre, tt.pmap); !bytes.Equal(got[2:], pb) {
				t.Errorf("AppendPmapList differs from the reference file")
			}
			// The v2 list the reference kept is the one add_pmaplist rules derive.
			if got := AppendPmapList(nil, PmapView(tt.rpcb)); !bytes.Equal(got, pb) {
				t.Errorf("PmapView: %v\nwant %v", PmapView(tt.rpcb), tt.pmap)
			}
			// The writers produce the same bytes, mode 0600, no temp file left.
			dir := t.TempDir()
			if err := WriteRPCB(filepath.Join(dir, RPCBFile), tt.rpcb); err != nil {
				t.Fatal(err)
			}
			if err := WritePmap(filepath.Join(dir, PmapFile), tt.pmap); err != nil {
				t.Fatal(err)
			}
			for name, want := range map[string][]byte{RPCBFile: rb, PmapFile: pb} {
				got, _ := os.ReadFile(filepath.Join(dir, name))
				if !bytes.Equal(got, want) {
					t.Errorf("%s written differs from the reference", name)
				}
				fi, _ := os.Stat(filepath.Join(dir, name))
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s mode %v, want 0600", name, fi.Mode())
				}
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 2 {
				t.Errorf("directory holds %d files, want 2", len(ents))
			}
		})
	}
}

// The first entry of the reference's fresh rpcbind.xdr, field by field.
func TestRPCBListLayout(t *testing.T) {
	want := unhex(t, `
		00000001             more = TRUE
		000186a0 00000004    prog 100000, vers 4
		00000004 74637036    netid "tcp6"
		00000008 3a3a2e30 2e313131  addr "::.0.111"
		00000009 73757065 72757365 72000000  owner "superuser" + 3 bytes padding
		00000000             more = FALSE`)
	if got := AppendRPCBList(nil, selfEntries[:1]); !bytes.Equal(got, want) {
		t.Errorf("got  %x\nwant %x", got, want)
	}
	if !bytes.Equal(golden(t, "fresh/rpcbind.xdr")[:len(want)-4], want[:len(want)-4]) {
		t.Error("layout does not match the reference file's first entry")
	}
	es, err := DecodeRPCBList(want)
	if err != nil || !reflect.DeepEqual(es, selfEntries[:1]) {
		t.Errorf("decode: %v %v", es, err)
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	var h strings.Builder
	for _, line := range strings.Split(s, "\n") {
		for _, f := range strings.Fields(line) {
			if _, err := hex.DecodeString(f); err != nil || len(f)%2 != 0 {
				break // the comment starts
			}
			h.WriteString(f)
		}
	}
	b, err := hex.DecodeString(h.String())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeErrors(t *testing.T) {
	rb := golden(t, "registered/rpcbind.xdr")
	pb := golden(t, "registered/portmap.xdr")
	// Every strict prefix lacks the terminating FALSE: xdr_rpcblist_ptr fails.
	for n := 0; n < len(rb); n++ {
		if _, err := DecodeRPCBList(rb[:n]); err == nil {
			t.Fatalf("rpcb prefix %d decoded", n)
		}
	}
	for n := 0; n < len(pb); n++ {
		if _, err := DecodePmapList(pb[:n]); err == nil {
			t.Fatalf("pmap prefix %d decoded", n)
		}
	}
	// Trailing bytes are ignored, as the reference's xdrstdio decode does.
	if es, err := DecodeRPCBList(append(rb[:len(rb):len(rb)], 1, 2, 3)); err != nil || len(es) != 20 {
		t.Errorf("trailing bytes: %d entries, %v", len(es), err)
	}
	// A string over RPC_MAXDATASIZE is refused before anything is allocated.
	long := []byte{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0x23, 0x29} // netid length 9001
	if _, err := DecodeRPCBList(long); err == nil {
		t.Error("netid of 9001 bytes accepted")
	}
	// Unknown file: fs.ErrNotExist; undecodable: the reference's message.
	if _, err := ReadRPCB(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	p := filepath.Join(t.TempDir(), RPCBFile)
	os.WriteFile(p, rb[:7], 0o600)
	_, err := ReadRPCB(p)
	var de *DecodeError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "xdr_"+p+": failed") {
		t.Errorf("undecodable file: %v", err)
	}
}

func TestListCap(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 21 MB list")
	}
	b := AppendPmapList(nil, make([]Mapping, MaxEntries+1))
	if _, err := DecodePmapList(b); !errors.Is(err, ErrTooMany) {
		t.Errorf("MaxEntries+1 mappings: %v", err)
	}
	if ms, err := DecodePmapList(b[len(b)-4-20*MaxEntries:]); err != nil || len(ms) != MaxEntries {
		t.Errorf("MaxEntries mappings: %d, %v", len(ms), err)
	}
}

// Ports as the reference's add_pmaplist reads them: sscanf "%d" six times.
func TestScanPort(t *testing.T) {
	tests := []struct {
		addr string
		port uint32
		ok   bool
	}{
		{"0.0.0.0.3.232", 1000, true},
		{"10.9.8.7.3.235", 1003, true},     // host part discarded (spec §1.5)
		{"127.0.0.1.255.255", 65535, true}, //
		{"0.0.0.0.256.1", 1, true},         // p1 & 0xff
		{"0.0.0.0.-1.0", 0xff00, true},     // negative: two's complement & 0xff
		{"0.0.0.0. 3.232", 1000, true},     // %d skips white space
		{"0.0.0.0.+3.232x", 1000, true},    // trailing text ignored
		{"0.0.0.0.3.", 0, false},
		{"0.0.0.0.3", 0, false},
		{"::.3.232", 0, false},
		{"0.0.0.0 .3.232", 0, false}, // '.' must follow the number
		{"", 0, false},
	}
	for _, tt := range tests {
		p, ok := scanPort(tt.addr)
		if p != tt.port || ok != tt.ok {
			t.Errorf("scanPort(%q) = %d, %v; want %d, %v", tt.addr, p, ok, tt.port, tt.ok)
		}
	}
}

func TestEntriesFromPmap(t *testing.T) {
	got := EntriesFromPmap([]Mapping{{300001, 1, 6, 1000}, {300002, 1, 17, 0x10203}, {300003, 1, 99, 1}})
	want := []Entry{
		ent(300001, 1, "tcp", "0.0.0.0.3.232", PmapOwner),
		ent(300002, 1, "udp", "0.0.0.0.2.3", PmapOwner), // 16-bit truncation, as pmapproc_change
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

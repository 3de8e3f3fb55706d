package pmap

import (
	"bytes"
	"errors"
	"testing"

	"github.com/openrpcbind/rpcbind/xdr"
)

func TestDumpV2(t *testing.T) {
	// Exchange 1: v2 DUMP of a fresh daemon, results after accept_stat.
	res := hx(t, `
		00000001 000186a0 00000004 00000006 0000006f // value follows; (100000, 4, tcp, 111)
		00000001 000186a0 00000003 00000006 0000006f // value follows; (100000, 3, tcp, 111)
		00000001 000186a0 00000002 00000006 0000006f // value follows; (100000, 2, tcp, 111)
		00000001 000186a0 00000004 00000011 0000006f // value follows; (100000, 4, udp, 111)
		00000001 000186a0 00000003 00000011 0000006f // value follows; (100000, 3, udp, 111)
		00000001 000186a0 00000002 00000011 0000006f // value follows; (100000, 2, udp, 111)
		00000000                                     // pmaplist end`)
	want := []Mapping{{Prog, 4, 6, 111}, {Prog, 3, 6, 111}, {Prog, 2, 6, 111},
		{Prog, 4, 17, 111}, {Prog, 3, 17, 111}, {Prog, 2, 17, 111}}
	ms, err := DecodeDumpV2(res)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != len(want) {
		t.Fatalf("got %v", ms)
	}
	for i := range want {
		if ms[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, ms[i], want[i])
		}
	}
	if got := appended(t, AppendDumpV2(append([]byte(nil), prefix...), want)); !bytes.Equal(got, res) {
		t.Fatalf("AppendDumpV2 % x", got)
	}
	// An empty list is one zero word.
	if ms, err := DecodeDumpV2([]byte{0, 0, 0, 0}); err != nil || len(ms) != 0 {
		t.Fatalf("empty list: %v %v", ms, err)
	}
	// Truncated in the middle of an entry, and missing the end marker.
	for _, cut := range []int{0, 3, 4, 10, len(res) - 4} {
		if _, err := DecodeDumpV2(res[:cut]); !errors.Is(err, xdr.ErrShort) {
			t.Errorf("cut at %d: err %v", cut, err)
		}
	}
}

func TestDumpV3(t *testing.T) {
	// Exchange 2: first entry and the end of the list.
	res := hx(t, `
		00000001 000186a0 00000004                   // value follows; r_prog 100000, r_vers 4
		00000004 74637036                            //   r_netid<4> "tcp6"
		00000008 3a3a2e30 2e313131                   //   r_addr<8> "::.0.111"
		00000009 73757065 72757365 72000000          //   r_owner<9> "superuser"
		00000001 000186a0 00000004                   // value follows; r_prog 100000, r_vers 4
		00000005 6c6f6361 6c000000                   //   r_netid<5> "local"
		00000011 2f72756e 2f727063 62696e64 2e736f63 //   r_addr<17> "/run/rpcbind.sock"
		6b000000                                     //   (continued)
		00000009 73757065 72757365 72000000          //   r_owner<9> "superuser"
		00000000                                     // rpcblist end`)
	want := []RPCBEntry{{Prog, 4, "tcp6", "::.0.111", "superuser"}, {Prog, 4, "local", "/run/rpcbind.sock", "superuser"}}
	es, err := DecodeDumpV3(res)
	if err != nil || len(es) != 2 || es[0] != want[0] || es[1] != want[1] {
		t.Fatalf("got %+v, %v", es, err)
	}
	if got := appended(t, AppendDumpV3(append([]byte(nil), prefix...), want)); !bytes.Equal(got, res) {
		t.Fatalf("AppendDumpV3 % x", got)
	}
}

func TestEntryList(t *testing.T) {
	// Exchange 109: GETADDRLIST over udp, (300004, 1).
	res := hx(t, `
		00000001                                     // value follows (rpcb_entry)
		0000000f 3132372e 302e302e 312e332e 32333200 //   r_maddr<15> "127.0.0.1.3.232"
		00000003 74637000                            //   r_nc_netid<3> "tcp"
		00000003                                     //   r_nc_semantics 3 (NC_TPI_COTS_ORD)
		00000004 696e6574                            //   r_nc_protofmly<4> "inet"
		00000003 74637000                            //   r_nc_proto<3> "tcp"
		00000001                                     // value follows (rpcb_entry)
		0000000f 3132372e 302e302e 312e332e 32333300 //   r_maddr<15> "127.0.0.1.3.233"
		00000003 75647000                            //   r_nc_netid<3> "udp"
		00000001                                     //   r_nc_semantics 1 (NC_TPI_CLTS)
		00000004 696e6574                            //   r_nc_protofmly<4> "inet"
		00000003 75647000                            //   r_nc_proto<3> "udp"
		00000000                                     // rpcb_entry_list end`)
	want := []Entry{
		{"127.0.0.1.3.232", "tcp", NCTPICotsOrd, "inet", "tcp"},
		{"127.0.0.1.3.233", "udp", NCTPIClts, "inet", "udp"},
	}
	es, err := DecodeEntryList(res)
	if err != nil || len(es) != 2 || es[0] != want[0] || es[1] != want[1] {
		t.Fatalf("got %+v, %v", es, err)
	}
	if got := appended(t, AppendEntryList(append([]byte(nil), prefix...), want)); !bytes.Equal(got, res) {
		t.Fatalf("AppendEntryList % x", got)
	}
	// Exchange 112: no entry.
	if es, err := DecodeEntryList(hx(t, "00000000 // rpcb_entry_list end")); err != nil || len(es) != 0 {
		t.Fatalf("empty: %v %v", es, err)
	}
}

func TestStatByVersFresh(t *testing.T) {
	// Exchange 3: GETSTAT of a fresh daemon (204 bytes, spec §1.8).
	res := hx(t, `
		00000000 00000000 00000000 00000000 00000001 // v2 info[0..4] 0 0 0 0 1
		00000000 00000000 00000000 00000000 00000000 // v2 info[5..9]
		00000000 00000000 00000000                   // v2 info[10..12]
		00000000 00000000                            // v2 setinfo, unsetinfo
		00000000 00000000                            // v2 addrinfo end, rmtinfo end
		00000000 00000000 00000000 00000000 00000000 // v3 info[0..4]
		00000000 00000000 00000000 00000000 00000000 // v3 info[5..9]
		00000000 00000000 00000000                   // v3 info[10..12]
		00000000 00000000                            // v3 setinfo, unsetinfo
		00000000 00000000                            // v3 addrinfo end, rmtinfo end
		00000000 00000000 00000000 00000000 00000001 // v4 info[0..4] 0 0 0 0 1
		00000000 00000000 00000000 00000000 00000000 // v4 info[5..9]
		00000000 00000000 00000001                   // v4 info[10..12] 0 0 1
		00000000 00000000                            // v4 setinfo, unsetinfo
		00000000 00000000                            // v4 addrinfo end, rmtinfo end`)
	if len(res) != 204 {
		t.Fatalf("golden is %d bytes", len(res))
	}
	var want [NumStatVers]Stat
	want[0].Info[4] = 1
	want[2].Info[4] = 1
	want[2].Info[12] = 1
	if got := appended(t, AppendStatByVers(append([]byte(nil), prefix...), &want)); !bytes.Equal(got, res) {
		t.Fatalf("AppendStatByVers\n% x\nwant\n% x", got, res)
	}
	st, err := DecodeStatByVers(res)
	if err != nil || st[0].Info != want[0].Info || st[2].Info != want[2].Info || st[1].Info != want[1].Info {
		t.Fatalf("decoded %+v, %v", st, err)
	}
	if _, err := DecodeStatByVers(res[:200]); !errors.Is(err, xdr.ErrShort) {
		t.Fatalf("truncated: %v", err)
	}
}

// A hostile reply cannot make a decoder keep more than its limit: it stops
// with ErrListTooLong.
func TestListLimits(t *testing.T) {
	more := func(entry []byte, n int) []byte {
		var b []byte
		for i := 0; i < n; i++ {
			b = append(b, 0, 0, 0, 1)
			b = append(b, entry...)
		}
		return append(b, 0, 0, 0, 0)
	}
	if _, err := DecodeDumpV2(more(make([]byte, 16), MaxDumpV2Len+1)); !errors.Is(err, ErrListTooLong) {
		t.Errorf("pmaplist: %v", err)
	}
	if ms, err := DecodeDumpV2(more(make([]byte, 16), MaxDumpV2Len)); err != nil || len(ms) != MaxDumpV2Len {
		t.Errorf("pmaplist at the limit: %d %v", len(ms), err)
	}
	if _, err := DecodeDumpV3(more(make([]byte, 20), MaxDumpV3Len+1)); !errors.Is(err, ErrListTooLong) {
		t.Errorf("rpcblist: %v", err)
	}
	if _, err := DecodeEntryList(more(make([]byte, 20), MaxEntryListLen+1)); !errors.Is(err, ErrListTooLong) {
		t.Errorf("entry list: %v", err)
	}
	stat := make([]byte, 15*4)
	addrs := more(make([]byte, 20), MaxStatListLen+1)
	if _, err := DecodeStatByVers(append(append(stat, addrs...), 0, 0, 0, 0)); !errors.Is(err, ErrListTooLong) {
		t.Errorf("addrinfo: %v", err)
	}
	rmts := more(make([]byte, 28), MaxStatListLen+1)
	if _, err := DecodeStatByVers(append(append(stat, 0, 0, 0, 0), rmts...)); !errors.Is(err, ErrListTooLong) {
		t.Errorf("rmtinfo: %v", err)
	}
}

package warmstart

import (
	"github.com/openrpcbind/rpcbind/internal/testenv"

	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const refDaemon = "/sbin/rpcbind"

// ours are entries the C daemon has never seen: odd string lengths for the
// padding, every owner form, netids with and without a v2 mirror.
var ours = []Entry{
	ent(400001, 1, "tcp", "0.0.0.0.4.1", "superuser"),
	ent(400001, 1, "udp", "127.0.0.1.4.2", "1000"),
	ent(400002, 7, "tcp6", "::1.4.3", "unknown"),
	ent(400003, 1, "local", "/run/a-socket-name.sock", "65534"),
	ent(400004, 2, "udp6", "fe80::1.4.5", "superuser"),
}

// The reference daemon reads files we wrote: started with -w on them in a
// private namespace, it lists our entries (rpcinfo) and, on SIGTERM, writes
// them back into its own files exactly.
func TestReferenceReadsOurFiles(t *testing.T) {
	testenv.Root(t, "a private network and mount namespace")
	testenv.Tool(t, refDaemon)
	in, out := t.TempDir(), t.TempDir()
	// Written by the Store, as our daemon does on exit: the table starts
	// with our own self entries, which the reference drops.
	s, _ := Open(in, Options{})
	if err := s.Compact(cat(selfEntries, ours)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	script := `set -e
ip link set lo up
mount -t tmpfs tmpfs /run
mkdir -p /run/rpcbind
cp "$IN/rpcbind.xdr" "$IN/portmap.xdr" /run/rpcbind/
chown -R _rpc /run/rpcbind
/sbin/rpcbind -f -w & P=$!
i=0; while [ ! -S /run/rpcbind.sock ]; do sleep 0.05; i=$((i+1)); [ $i -lt 400 ] || exit 3; done
rpcinfo > "$OUT/rpcinfo.txt"
rpcinfo -p > "$OUT/rpcinfo-p.txt"
kill -TERM $P; wait $P || true
cp /run/rpcbind/rpcbind.xdr /run/rpcbind/portmap.xdr "$OUT/"
`
	cmd := exec.Command("unshare", "-n", "-m", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "IN="+in, "OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reference daemon run: %v\n%s", err, b)
	}
	listing, _ := os.ReadFile(filepath.Join(out, "rpcinfo.txt"))
	for _, e := range ours {
		if !hasRow(string(listing), e) {
			t.Errorf("rpcinfo does not list %v:\n%s", e, listing)
		}
	}
	// What the reference saved: its fresh self entries, then ours in order.
	es, err := ReadRPCB(filepath.Join(out, RPCBFile))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(es, cat(selfEntries, ours)) {
		t.Errorf("reference saved\n%v\nwant\n%v", es, cat(selfEntries, ours))
	}
	ms, err := ReadPmap(filepath.Join(out, PmapFile))
	if err != nil {
		t.Fatal(err)
	}
	if want := PmapView(cat(selfEntries, ours)); !reflect.DeepEqual(ms, want) {
		t.Errorf("reference saved v2 list\n%v\nwant\n%v", ms, want)
	}
	// And we read its files back as the same table.
	d := t.TempDir()
	for _, n := range []string{RPCBFile, PmapFile} {
		b, _ := os.ReadFile(filepath.Join(out, n))
		os.WriteFile(filepath.Join(d, n), b, 0o600)
	}
	if got, err := recoverDir(t, d); err != nil || !reflect.DeepEqual(got, ours) {
		t.Errorf("recover of the reference's files: %v, %v", got, err)
	}
}

// hasRow finds e in rpcinfo's table: program version netid address service owner.
func hasRow(listing string, e Entry) bool {
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && f[0] == itoa(e.Prog) && f[1] == itoa(e.Vers) &&
			f[2] == e.Netid && f[3] == e.Addr && f[5] == e.Owner {
			return true
		}
	}
	return false
}

func itoa(v uint32) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + v%10)}, b...)
		if v /= 10; v == 0 {
			return string(b)
		}
	}
}

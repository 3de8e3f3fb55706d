package daemon

import "testing"

// TestHardeningOptions: the issue-6 long options parse, reject bad values,
// and default to off / zero (the packages' defaults).
func TestHardeningOptions(t *testing.T) {
	f, err := Parse("rpcbind", []string{"-wf", "--refuse-remote-udp-dump", "--udp-rate=5.5", "--udp-burst", "7",
		"--no-hosts-access", "--max-conns-per-source=3", "--max-regs-per-owner=9", "--max-reg-bytes-per-owner=4096", "--check-port", "--prune", "--prune-interval=2"})
	if err != nil {
		t.Fatal(err)
	}
	if !f.RefuseRemoteUDPDump || f.UDPRate != 5.5 || f.UDPBurst != 7 || !f.NoHostsAccess || f.MaxConnsPerSource != 3 ||
		f.MaxRegsPerOwner != 9 || f.MaxRegBytesPerOwner != 4096 || !f.CheckPort || !f.Prune || f.PruneInterval != 2 || !f.WarmStart || !f.Foreground {
		t.Errorf("parsed %+v", f)
	}
	d, err := Parse("rpcbind", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.RefuseRemoteUDPDump || d.UDPRate != 0 || d.NoHostsAccess || d.CheckPort || d.Prune || d.MaxConnsPerSource != 0 {
		t.Errorf("defaults %+v", d)
	}
	for _, bad := range []string{"--udp-rate=0", "--udp-rate=x", "--udp-burst=0", "--max-conns-per-source=-1",
		"--max-regs-per-owner=", "--max-reg-bytes-per-owner=0", "--max-reg-bytes-per-owner=1k", "--prune-interval=0", "--check-port=1", "--prune=yes"} {
		if _, err := Parse("rpcbind", []string{bad}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openrpcbind/rpcbind/internal/nstest"
	"github.com/openrpcbind/rpcbind/internal/testenv"
	"github.com/openrpcbind/rpcbind/pmap"
)

// ganeshaConf is a minimal nfs-ganesha configuration: NFSv3 and v4 only,
// no grace period (nothing to recover in a fresh namespace), one in-memory
// export (FSAL MEM, package nfs-ganesha-mem).
const ganeshaConf = `NFS_CORE_PARAM {
	Protocols = 3, 4;
}
NFSV4 {
	Graceless = true;
}
EXPORT {
	Export_Id = 1;
	Path = "/mem";
	Pseudo = "/mem";
	Access_Type = RW;
	Squash = No_Root_Squash;
	FSAL {
		Name = MEM;
	}
}
`

// ganeshaReady is what ganesha.nfsd logs once every service is registered.
const ganeshaReady = "NFS SERVER INITIALIZED"

// ganeshaStartTimeout bounds ganesha's start (about 0.1 s here).
const ganeshaStartTimeout = 60 * time.Second

// ganeshaWant is what nfs-ganesha 4.3 registers with Debian's rpcbind, as
// "prog vers" for each of udp, udp6, tcp, tcp6: NFS v3 and v4, MOUNT v1 and
// v3, NLM v4, RQUOTA v1 and v2 — 7 × 4 rows, all owned by superuser (it
// registers over the local socket as root).
var ganeshaWant = []string{"100003 3", "100005 1", "100005 3", "100021 4", "100003 4", "100011 1", "100011 2"}

// ganeshaRow normalises an rpcinfo row: the ports of NFS (2049) and RQUOTA
// (875) are fixed, the others random.
func ganeshaRow(row string) string {
	f := strings.Fields(row) // prog vers netid addr service owner
	if len(f) != 6 {
		return row
	}
	if parts := strings.Split(f[3], "."); len(parts) > 2 {
		port, _ := pmap.UaddrPort(f[3])
		f[3] = strings.Join(parts[:len(parts)-2], ".") + ":random"
		if port == 2049 || port == 875 {
			f[3] = strings.TrimSuffix(f[3], "random") + strconv.Itoa(port)
		}
	}
	return strings.Join(f, " ")
}

// TestGanesha runs nfs-ganesha (userspace NFS server, in-memory export)
// against each daemon: it registers NFS, MOUNT, NLM and RQUOTA on four
// netids, showmount -e lists its export through the portmapper, and a
// SIGTERM to ganesha unregisters everything. Ours must show the same rows
// as the reference.
func TestGanesha(t *testing.T) {
	env, ok := Enter(t)
	if !ok {
		return
	}
	ganesha := nstest.Need(t, "/usr/bin/ganesha.nfsd")
	showmount := nstest.Need(t, "/sbin/showmount", "/usr/sbin/showmount")
	testenv.File(t, "nfs-ganesha-mem (FSAL MEM)", "/usr/lib/*/ganesha/libfsalmem.so")
	conf := filepath.Join(t.TempDir(), "ganesha.conf")
	if err := os.WriteFile(conf, []byte(ganeshaConf), 0o644); err != nil {
		t.Fatal(err)
	}
	results := map[string][]string{}
	env.ForEach(t, func(t *testing.T, impl Impl, d *nstest.Daemon) {
		// Ganesha's NFSv4 recovery directory and its run directory (the
		// pid file, callback credentials); /run is fresh per daemon.
		nstest.MountTmpfs(t, "/var/lib/nfs")
		defer syscall.Unmount("/var/lib/nfs", syscall.MNT_DETACH)
		for _, dir := range []string{"/var/lib/nfs/ganesha", "/run/ganesha"} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		g := nstest.Start(t, ganesha, "-F", "-L", "/dev/stderr", "-f", conf,
			"-p", "/run/ganesha/ganesha.pid", "-N", "NIV_EVENT")
		g.WaitUntil(ganeshaStartTimeout, ganeshaReady, func() bool {
			return strings.Contains(g.Output(), ganeshaReady)
		})

		var rows []string
		for _, r := range nonSelf(env.Run(t, "rpcinfo").Stdout) {
			rows = append(rows, ganeshaRow(r))
		}
		results[impl.Name] = rows
		t.Logf("%s: ganesha registered:\n%s", impl.Name, strings.Join(rows, "\n"))
		for _, pv := range ganeshaWant {
			for _, netid := range []string{"udp", "udp6", "tcp", "tcp6"} {
				found := false
				for _, r := range rows {
					f := strings.Fields(r)
					found = found || (f[0]+" "+f[1] == pv && f[2] == netid && f[5] == "superuser")
				}
				if !found {
					t.Errorf("%s: no %s %s row owned by superuser", impl.Name, pv, netid)
				}
			}
		}
		if len(rows) != 4*len(ganeshaWant) {
			t.Errorf("%s: %d rows, want %d", impl.Name, len(rows), 4*len(ganeshaWant))
		}
		if p := env.Run(t, "rpcinfo -p"); !strings.Contains(p.Stdout, "    100003    3   tcp   2049  nfs\n") {
			t.Errorf("%s: rpcinfo -p has no NFS v3 tcp 2049 row:\n%s", impl.Name, p)
		}
		// showmount asks the portmapper for MOUNT, then calls it.
		want := "Export list for 127.0.0.1:\n/mem (everyone)\n"
		if r := env.Run(t, showmount+" -e 127.0.0.1"); r.Exit != 0 || r.Stdout != want {
			t.Errorf("%s: showmount:\n%s\nwant stdout %q", impl.Name, r, want)
		}
		// GETADDR for MOUNT v3 over TCP, then a NULL to it.
		if r := env.Run(t, "rpcinfo -t 127.0.0.1 100005 3"); r.Stdout != "program 100005 version 3 ready and waiting\n" {
			t.Errorf("%s: %s", impl.Name, r)
		}

		if err := g.Stop(syscall.SIGTERM); err != nil {
			t.Errorf("ganesha exit after SIGTERM: %v", err)
		}
		if left := nonSelf(env.Run(t, "rpcinfo").Stdout); len(left) != 0 {
			t.Errorf("%s: after ganesha stopped, still registered:\n%s", impl.Name, strings.Join(left, "\n"))
		}
		if p := env.Run(t, "rpcinfo -p"); p.Stdout != goldenRpcinfoP {
			t.Errorf("%s: after ganesha stopped:\n%s", impl.Name, p)
		}
	})
	ref, ours := results["reference"], results["ours"]
	if ours != nil && strings.Join(ours, "\n") != strings.Join(ref, "\n") {
		t.Errorf("ganesha's registrations differ (- reference, + ours):\n%s",
			lineDiff(strings.Join(ref, "\n")+"\n", strings.Join(ours, "\n")+"\n"))
	}
}

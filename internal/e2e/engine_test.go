package e2e

import (
	"syscall"
	"testing"
)

// TestStreamEngines: the goroutine-per-connection engine (an option) and
// the epoll engine (the default) give the same answers over TCP and the
// local socket.
func TestStreamEngines(t *testing.T) {
	env, ok := Enter(t)
	if !ok {
		return
	}
	var ours *Impl
	for i := range env.Impls {
		if env.Impls[i].Name == "ours" {
			ours = &env.Impls[i]
		}
	}
	if ours == nil {
		t.Fatal("our daemon was not built")
	}
	script := []string{"rpcinfo", "rpcinfo -p", "rpcinfo 127.0.0.1", "rpcinfo -p 127.0.0.1", "rpcinfo -l 127.0.0.1 100000 4", "rpcinfo -m"}
	outputs := map[string][]Result{}
	for _, engine := range []string{"epoll", "goroutine"} {
		impl := *ours
		impl.Args = append(append([]string(nil), DaemonArgs...), "--stream-engine="+engine)
		d := env.Start(t, impl)
		for _, line := range script {
			outputs[engine] = append(outputs[engine], env.Run(t, line))
		}
		if err := d.Stop(syscall.SIGTERM); err != nil {
			t.Errorf("%s: exit after SIGTERM: %v", engine, err)
		}
	}
	for i, line := range script {
		a, b := outputs["epoll"][i], outputs["goroutine"][i]
		if a.String() != b.String() {
			t.Errorf("%s differs between engines:\nepoll:\n%s\ngoroutine:\n%s", line, a, b)
		}
		if a.Exit != 0 {
			t.Errorf("%s: exit %d\n%s", line, a.Exit, a)
		}
	}
}

package daemon

import "testing"

func TestStreamEngineFlag(t *testing.T) {
	for _, c := range []struct {
		arg, want string
		bad       bool
	}{
		{"", "", false},
		{"--stream-engine=epoll", "epoll", false},
		{"--stream-engine=goroutine", "goroutine", false},
		{"--stream-engine=threads", "", true},
	} {
		var args []string
		if c.arg != "" {
			args = []string{c.arg}
		}
		f, err := Parse("rpcbind", args)
		if c.bad {
			if err == nil {
				t.Errorf("%s: accepted", c.arg)
			}
			continue
		}
		if err != nil || f.StreamEngine != c.want {
			t.Errorf("%s: engine %q, %v; want %q", c.arg, f.StreamEngine, err, c.want)
		}
	}
}

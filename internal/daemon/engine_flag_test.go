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

// The stream budgets take positive integers; absent, the server's defaults.
func TestStreamBudgetFlags(t *testing.T) {
	for _, c := range []struct {
		args       []string
		recs, held int
		bad        bool
	}{
		{nil, 0, 0, false},
		{[]string{"--records-per-wakeup=4", "--max-held-bytes", "1048576"}, 4, 1 << 20, false},
		{[]string{"--records-per-wakeup=0"}, 0, 0, true},
		{[]string{"--max-held-bytes=16M"}, 0, 0, true},
		{[]string{"--heavy-share=0"}, 0, 0, true},
		{[]string{"--heavy-share=101"}, 0, 0, true},
		{[]string{"--heavy-share=fifty"}, 0, 0, true},
		{[]string{"--max-held-bytes=-1"}, 0, 0, true},
	} {
		f, err := Parse("rpcbind", c.args)
		if c.bad {
			if err == nil {
				t.Errorf("%q: accepted", c.args)
			}
			continue
		}
		if err != nil || f.RecordsPerWakeup != c.recs || f.MaxHeldBytes != c.held {
			t.Errorf("%q: %d, %d, %v; want %d, %d", c.args, f.RecordsPerWakeup, f.MaxHeldBytes, err, c.recs, c.held)
		}
	}
}

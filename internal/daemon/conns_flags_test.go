package daemon

import "testing"

// TestMaxConnsPerUID: --max-conns-per-uid parses, defaults to 0 (the
// server's DefaultMaxConnsPerUID) and refuses values below 1.
func TestMaxConnsPerUID(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 0},
		{[]string{"--max-conns-per-uid=5"}, 5},
		{[]string{"--max-conns-per-uid", "7"}, 7},
	} {
		f, err := Parse("rpcbind", tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if f.MaxConnsPerUID != tc.want {
			t.Errorf("%v: MaxConnsPerUID = %d, want %d", tc.args, f.MaxConnsPerUID, tc.want)
		}
	}
	for _, bad := range []string{"--max-conns-per-uid=0", "--max-conns-per-uid=-1", "--max-conns-per-uid=x", "--max-conns-per-uid"} {
		if _, err := Parse("rpcbind", []string{bad}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

package rpc

import "testing"

func TestCheckServerReply(t *testing.T) {
	call := AppendCall(nil, 0x01020304, 100000, 2, 0, nil)
	ok := AppendAccepted(nil, 0x01020304, Success)
	denied := AppendAuthError(nil, 0x01020304, AuthTooWeak)
	for _, c := range []struct {
		name      string
		msg, out  []byte
		sent, bad bool
	}{
		{"silence", call, nil, false, false},
		{"silent but appended", call, ok, false, true},
		{"success", call, ok, true, false},
		{"error reply", call, denied, true, false},
		{"reply to a short message", []byte{1, 2}, ok, true, true},
		{"wrong xid", AppendCall(nil, 9, 100000, 2, 0, nil), ok, true, true},
		{"truncated reply", call, ok[:10], true, true},
	} {
		if err := CheckServerReply(c.msg, c.out, c.sent); (err != nil) != c.bad {
			t.Errorf("%s: %v, want error %v", c.name, err, c.bad)
		}
	}
}

package e2e

import "testing"

func TestLineDiff(t *testing.T) {
	for _, tc := range []struct{ want, got, diff string }{
		{"a\nb\n", "a\nb\n", "  a\n  b\n"},
		{"a\nb\nc\n", "a\nc\n", "  a\n- b\n  c\n"},
		{"a\n", "a\nx\n", "  a\n+ x\n"},
		{"a\nb\n", "a\nB\n", "  a\n- b\n+ B\n"},
		{"a", "a\n", "- a⏎ (no newline)\n+ a\n"},
	} {
		if d := lineDiff(tc.want, tc.got); d != tc.diff {
			t.Errorf("lineDiff(%q, %q) =\n%s\nwant\n%s", tc.want, tc.got, d, tc.diff)
		}
	}
}

func TestResultDiff(t *testing.T) {
	ref := Result{Cmd: "rpcinfo -p", Stdout: "x\n", Exit: 0}
	got := Result{Cmd: "rpcinfo -p", Stdout: "y\n", Stderr: "oops\n", Exit: 12}
	want := "$ rpcinfo -p\nexit status: reference 0, ours 12\n" +
		"stdout (- reference, + ours):\n- x\n+ y\n" +
		"stderr (- reference, + ours):\n+ oops\n"
	if d := resultDiff(ref, got); d != want {
		t.Errorf("resultDiff =\n%s\nwant\n%s", d, want)
	}
}

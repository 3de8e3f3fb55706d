package e2e

import "strings"

// lineDiff returns a unified-style listing of want (reference, "-") against
// got ("+"), with unchanged lines indented; outputs here are a few dozen
// lines, so a quadratic LCS is fine.
func lineDiff(want, got string) string {
	a := strings.SplitAfter(want, "\n")
	b := strings.SplitAfter(got, "\n")
	// lcs[i][j] = length of the LCS of a[i:] and b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	line := func(prefix, s string) {
		if s == "" {
			return
		}
		sb.WriteString(prefix)
		sb.WriteString(s)
		if !strings.HasSuffix(s, "\n") {
			sb.WriteString("⏎ (no newline)\n")
		}
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			line("  ", a[i])
			i, j = i+1, j+1
		case i < len(a) && (j == len(b) || lcs[i+1][j] >= lcs[i][j+1]):
			line("- ", a[i])
			i++
		default:
			line("+ ", b[j])
			j++
		}
	}
	return sb.String()
}

// resultDiff explains how got differs from the reference's result.
func resultDiff(ref, got Result) string {
	var sb strings.Builder
	sb.WriteString("$ " + ref.Cmd + "\n")
	if ref.Exit != got.Exit {
		sb.WriteString("exit status: reference " + itoa(ref.Exit) + ", ours " + itoa(got.Exit) + "\n")
	}
	if ref.Stdout != got.Stdout {
		sb.WriteString("stdout (- reference, + ours):\n" + lineDiff(ref.Stdout, got.Stdout))
	}
	if ref.Stderr != got.Stderr {
		sb.WriteString("stderr (- reference, + ours):\n" + lineDiff(ref.Stderr, got.Stderr))
	}
	return sb.String()
}

func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/openrpcbind/rpcbind/internal/daemon"
)

// Every long option --help lists is documented in rpcbind.8 (DECISIONS
// "new options"), and the man page names no option the program lacks.
func TestManPageLongOptions(t *testing.T) {
	b, err := os.ReadFile("rpcbind.8")
	if err != nil {
		t.Fatal(err)
	}
	man := string(b)
	help := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+--([a-z0-9-]+)`).FindAllStringSubmatch(daemon.Help, -1) {
		help[m[1]] = true
		if !strings.Contains(man, `\-\-`+strings.ReplaceAll(m[1], "-", `\-`)) {
			t.Errorf("--%s (in --help) is missing from rpcbind.8", m[1])
		}
	}
	if len(help) < 3 {
		t.Fatalf("no long options found in --help:\n%s", daemon.Help)
	}
	for _, m := range regexp.MustCompile(`\\-\\-([a-z0-9\\-]+[a-z0-9])`).FindAllStringSubmatch(man, -1) {
		name := strings.ReplaceAll(m[1], `\-`, "-")
		if !help[name] && name != "reinstall" && name != "name" { // apt-get --reinstall; the generic --name
			t.Errorf("rpcbind.8 documents --%s, which --help does not list", name)
		}
	}
}

// The short options agree everywhere: the letters Parse accepts, the
// reference's usage line, --help, the man page's synopsis and its entries.
// Debian's 1.2.6 has no -v ("invalid option -- 'v'").
func TestManPageShortOptions(t *testing.T) {
	b, err := os.ReadFile("rpcbind.8")
	if err != nil {
		t.Fatal(err)
	}
	man := string(b)
	letters := func(s string) string {
		r := []rune(s)
		slices.Sort(r)
		return string(r)
	}
	var accepted []rune
	for c := 'a'; c <= 'z'; c++ {
		args := []string{"-" + string(c)}
		if c == 'h' {
			args = append(args, "127.0.0.1")
		}
		if _, err := daemon.Parse("rpcbind", args); err == nil {
			accepted = append(accepted, c)
		}
	}
	want := letters(string(accepted))
	if want != "adfhilrsw" {
		t.Errorf("Parse accepts -%s, want Debian's -adfhilrsw", want)
	}
	usage := regexp.MustCompile(`\[-([a-z]+)\]`).FindStringSubmatch(daemon.Usage)
	if usage == nil || letters(usage[1]) != want {
		t.Errorf("usage line %q, want the letters %s", daemon.Usage, want)
	}
	var help string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z]) `).FindAllStringSubmatch(daemon.Help, -1) {
		help += m[1]
	}
	if letters(help) != want {
		t.Errorf("--help lists -%s, want -%s", letters(help), want)
	}
	syn := regexp.MustCompile(`\.RB \[ \\-([a-z]+) \]\n\.RB \[ \\-h\n`).FindStringSubmatch(man)
	if syn == nil || letters(syn[1]+"h") != want {
		t.Errorf("rpcbind.8 SYNOPSIS %q, want the letters %s", syn, want)
	}
	var entries string
	for _, m := range regexp.MustCompile(`(?m)^\.TP\n\.BI? \\-([a-z])\b`).FindAllStringSubmatch(man, -1) {
		entries += m[1]
	}
	if letters(entries) != want {
		t.Errorf("rpcbind.8 describes -%s, want -%s", letters(entries), want)
	}
}

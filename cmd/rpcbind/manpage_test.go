package main

import (
	"os"
	"regexp"
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
	help := map[string]bool{"version": true} // --version is -v's long form
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

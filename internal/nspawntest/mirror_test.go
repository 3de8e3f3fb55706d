package nspawntest

import (
	"os"
	"testing"
)

func TestMirrorParsers(t *testing.T) {
	deb822 := `Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
`
	tests := []struct {
		name, text, suite, want string
		deb822                  bool
	}{
		{"deb822 first stanza", deb822, "bookworm", "http://mirror.example/debian", true},
		{"deb822 second stanza", deb822, "bookworm-security", "http://mirror.example/debian-security", true},
		{"deb822 other suite", deb822, "trixie", "", true},
		{"deb822 disabled", "Types: deb\nEnabled: no\nURIs: http://a/\nSuites: bookworm\nComponents: main\n", "bookworm", "", true},
		{"deb822 deb-src only", "Types: deb-src\nURIs: http://a/\nSuites: bookworm\nComponents: main\n", "bookworm", "", true},
		{"deb822 no main", "Types: deb\nURIs: http://a/\nSuites: bookworm\nComponents: contrib\n", "bookworm", "", true},
		{"one-line", "# c\ndeb http://m.example/debian bookworm main contrib\n", "bookworm", "http://m.example/debian", false},
		{"one-line options", "deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n", "bookworm", "http://m.example/debian", false},
		{"one-line other repo", "deb https://vendor.example/apt cloud-sdk-bookworm main\n", "bookworm", "", false},
		{"one-line deb-src", "deb-src http://m.example/debian bookworm main\n", "bookworm", "", false},
		{"one-line commented out", "#deb http://m.example/debian bookworm main\n", "bookworm", "", false},
		{"one-line unterminated options", "deb [arch=amd64 http://m.example/debian bookworm main\n", "bookworm", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			if tt.deb822 {
				got = mirrorDeb822(tt.text, tt.suite)
			} else {
				got = mirrorOneLine(tt.text, tt.suite)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// The machine running the container test has a bookworm source (CI: a
// fresh bookworm machine); HostMirror must find it.
func TestHostMirrorOnThisMachine(t *testing.T) {
	if os.Getenv("RPCBIND_NSPAWN") != "1" {
		t.Skip("set RPCBIND_NSPAWN=1 (the container tests need the machine's bookworm apt source)")
	}
	uri, err := HostMirror(Suite)
	if err != nil {
		t.Fatal(err)
	}
	if uri == "" {
		t.Fatal("empty mirror")
	}
	t.Logf("mirror for %s: %s", Suite, uri)
}

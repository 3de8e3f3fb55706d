package archtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/openrpcbind/rpcbind"

// goList runs `go list` in the module root and returns its output lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = root(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Fields(string(out))
}

func root(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

func TestXDRUsesNoReflectOrFmt(t *testing.T) {
	for _, dep := range goList(t, "-deps", module+"/xdr") {
		if dep == "reflect" || dep == "fmt" {
			t.Errorf("xdr depends on %s; the hot-path codec must not", dep)
		}
	}
}

func TestOracleIsTestOnly(t *testing.T) {
	for _, dep := range goList(t, "-deps", "./cmd/...") {
		if strings.Contains(dep, "davecgh/go-xdr") {
			t.Errorf("the commands depend on %s; go-xdr is the tests' oracle only", dep)
		}
	}
}

// layers: a package may import only packages of a lower layer (or stdlib
// and third-party modules).
var layers = map[string]int{
	"xdr":               0,
	"internal/rpc":      1,
	"pmap":              2,
	"internal/access":   3,
	"internal/ifaddr":   3,
	"internal/registry": 3,
}

func TestImportArrows(t *testing.T) {
	for pkg, layer := range layers {
		for _, imp := range goList(t, "-f", `{{join .Imports " "}}`, module+"/"+pkg) {
			rel, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			l, known := layers[rel]
			if !known || l >= layer {
				t.Errorf("%s imports %s: imports must point down xdr ← internal/rpc ← pmap ← the rest", pkg, rel)
			}
		}
	}
}

func TestEveryPackageHasDocGo(t *testing.T) {
	for _, dir := range goList(t, "-f", "{{.Dir}}", "./...") {
		if _, err := os.Stat(filepath.Join(dir, "doc.go")); err != nil {
			// commands document themselves in main.go's package comment
			if strings.Contains(dir, string(filepath.Separator)+"cmd"+string(filepath.Separator)) {
				continue
			}
			t.Errorf("%s has no doc.go", dir)
		}
	}
}

// The daemon's resident memory counts every page of its binary it touches,
// and with the kernel's fault-around nearly every page of text and rodata
// ends up mapped: a package linked in costs RSS whether or not it runs.
// go-systemd's activation package brought crypto/tls, crypto/x509 and
// math/big (1.3 MB of the file, 0.66 MiB of idle RSS); the daemon speaks
// LISTEN_FDS itself. None of these has a use in a portmapper.
func TestDaemonLinksNoCrypto(t *testing.T) {
	banned := []string{"crypto/tls", "crypto/x509", "math/big", "net/http", "encoding/asn1"}
	for _, dep := range goList(t, "-deps", "./cmd/rpcbind") {
		if slices.Contains(banned, dep) || strings.HasPrefix(dep, "github.com/coreos/go-systemd/v22/activation") {
			t.Errorf("cmd/rpcbind depends on %s: it adds mapped pages to the daemon's RSS", dep)
		}
	}
}

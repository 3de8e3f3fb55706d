package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Environment variables passed from the test process to its namespace
// children (and usable by hand to pick binaries).
const (
	EnvOurs   = "RPCBIND_BIN"     // the daemon under test
	EnvClient = "E2E_TIRPCCLIENT" // the libtirpc client
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Main runs the tests and removes the binaries they built:
//
//	func TestMain(m *testing.M) { os.Exit(e2e.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	return code
}

// goTool finds the go command: PATH, then Go's default location on CI.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// ModuleRoot returns the directory holding go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("e2e: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("e2e: not inside the module")
	}
	return filepath.Dir(mod), nil
}

// build compiles the C client and, when it exists, cmd/rpcbind, once per
// test binary, and exports their paths for the namespace children.
func build() error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	if buildDir, err = os.MkdirTemp("", "rpcbind-e2e-"); err != nil {
		return err
	}
	// Steps may run as another user ("@nobody ..."): let them reach the binaries.
	if err := os.Chmod(buildDir, 0o755); err != nil {
		return err
	}
	client := filepath.Join(buildDir, "tirpcclient")
	if err := compileC(filepath.Join(root, "testdata/c/tirpcclient.c"), client); err != nil {
		return err
	}
	os.Setenv(EnvClient, client)

	if os.Getenv(EnvOurs) != "" {
		return nil
	}
	bin := filepath.Join(buildDir, "rpcbind")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command(goTool(), append(args, "./cmd/rpcbind")...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("e2e: go build ./cmd/rpcbind: %v\n%s", err, out)
	}
	os.Setenv(EnvOurs, bin)
	return nil
}

func compileC(src, out string) error {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return fmt.Errorf("e2e: gcc not installed: %w", err)
	}
	cmd := exec.Command(gcc, "-Wall", "-Werror", "-O2", "-I/usr/include/tirpc",
		"-o", out, src, "-ltirpc")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("e2e: gcc %s (libtirpc-dev installed?): %v\n%s", src, err, b)
	}
	return nil
}

// BuildC compiles testdata/c/tirpcclient.c into t.TempDir() and returns the
// binary's path. (Enter builds it once for all tests; this is for tests that
// want their own copy.)
func BuildC(t testing.TB) string {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "tirpcclient")
	if err := compileC(filepath.Join(root, "testdata/c/tirpcclient.c"), out); err != nil {
		t.Fatal(err)
	}
	return out
}

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
)

func TestVersionString(t *testing.T) {
	stamp := func(settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	goV := runtime.Version()
	for _, tc := range []struct {
		name   string
		linked string
		bi     *debug.BuildInfo
		want   string
	}{
		{"make build", "v1.0-3-gfee1c75-dirty", stamp("vcs.revision", "0123456789abcdef0123"), "rpcbind 1.2.6 (openrpcbind v1.0-3-gfee1c75-dirty, " + goV + ")"},
		{"vcs stamp", "", stamp("vcs.revision", "0123456789abcdef0123", "vcs.modified", "false"), "rpcbind 1.2.6 (openrpcbind 0123456789ab, " + goV + ")"},
		{"vcs dirty", "", stamp("vcs.revision", "0123456789abcdef0123", "vcs.modified", "true"), "rpcbind 1.2.6 (openrpcbind 0123456789ab-dirty, " + goV + ")"},
		{"go install", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "rpcbind 1.2.6 (openrpcbind v1.2.3, " + goV + ")"},
		{"no stamp", "", stamp(), "rpcbind 1.2.6 (openrpcbind devel, " + goV + ")"},
		{"no build info", "", nil, "rpcbind 1.2.6 (openrpcbind devel, " + goV + ")"},
	} {
		if got := versionString(tc.linked, tc.bi); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestVersionLinkFlag: the Makefile's -X main.version reaches --version.
func TestVersionLinkFlag(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "rpcbind")
	cmd := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7-4-gabcdef0", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if want := "rpcbind 1.2.6 (openrpcbind v9.8.7-4-gabcdef0, " + runtime.Version() + ")\n"; err != nil || string(out) != want {
		t.Errorf("--version: %q, %v; want %q", out, err, want)
	}
}

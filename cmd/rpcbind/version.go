package main

import (
	"runtime"
	"runtime/debug"
)

// ReferenceVersion is the Debian rpcbind release whose behaviour this
// daemon reproduces (spec: bookworm's 1.2.6).
const ReferenceVersion = "1.2.6"

// version is the project's own version, set at link time by the Makefile:
// -ldflags "-X main.version=$(git describe --tags --always --dirty)".
// Empty in a plain `go build`; versionString then uses the binary's VCS
// stamp.
var version string

// versionString is what --version prints: the reference's version first
// (scripts that parse "rpcbind X.Y.Z" keep working), then ours, then the
// Go release. bi is the binary's build information (nil if none).
func versionString(linked string, bi *debug.BuildInfo) string {
	v := linked
	if v == "" {
		v = buildVersion(bi)
	}
	return "rpcbind " + ReferenceVersion + " (openrpcbind " + v + ", " + runtime.Version() + ")"
}

// buildVersion is the commit of the binary's VCS stamp (12 digits, with
// "-dirty" for uncommitted changes), else the module version (a `go
// install module@version`), else "devel".
func buildVersion(bi *debug.BuildInfo) string {
	if bi == nil {
		return "devel"
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "-dirty"
		}
		return rev
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	return "devel"
}

// readBuildInfo is debug.ReadBuildInfo without the ok.
func readBuildInfo() *debug.BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	return bi
}

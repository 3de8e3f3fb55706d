// Package testenv decides what a test does when the machine lacks
// something it needs: a program, a package's files, root, IPv6, an opt-in
// such as RPCBIND_NSPAWN=1.
//
// By default the test fails, naming what is missing: a skipped test must
// never pass for a run of the whole suite (`make test` installs what the
// tests need first, from .ci/deps). A reduced run is asked for explicitly
// with RPCBIND_REDUCED=1 (`make test-reduced`): the test is then skipped,
// and when RPCBIND_SKIPLOG names a file, one line per skip is appended to
// it, so that the run can print what it left out.
//
// Skips that do not depend on the machine (-short, a re-executed helper
// process) do not go through this package.
package testenv

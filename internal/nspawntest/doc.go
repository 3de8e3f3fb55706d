// Package nspawntest runs rpcbind end to end under a real systemd: a
// minimal Debian bookworm tree (debootstrap, cached), booted with
// systemd-nspawn in a private network, with the daemon and the unit files
// installed at Debian's paths, and a script (e2e.sh) that checks socket
// activation, the _rpc privilege drop, rpc.statd's registrations, a restart
// that keeps them, and a clean stop.
//
// The test is slow (a boot) and needs root, network access for the first
// debootstrap, systemd-nspawn and overlayfs; it runs only with
// RPCBIND_NSPAWN=1. RPCBIND_NSPAWN_DAEMON=reference keeps Debian's own
// rpcbind binary in the tree (proving the harness and our unit files against
// the reference); the default, "ours", installs ./cmd/rpcbind.
package nspawntest

// Package systemd is rpcbind's edge to the service manager: socket
// activation (sd_listen_fds(3), the LISTEN_FDS protocol) and readiness
// notification (sd_notify(3), over github.com/coreos/go-systemd/v22/daemon).
//
// Everything here is a no-op outside systemd: TakeActivated finds no
// sockets when LISTEN_PID is not ours, and a Notifier sends nothing when
// NOTIFY_SOCKET is unset.
//
// Activated descriptors are taken exactly once (listenFiles: sd_listen_fds
// with unset_environment, so that no child inherits LISTEN_*) and classified
// here with getsockname/getsockopt, in whatever order systemd passed them and
// whether or not LISTEN_FDNAMES is set. Each becomes a Socket carrying the
// rpcbind netid ("local", "tcp", "tcp6", "udp", "udp6") and the universal
// address (RFC 5665 §5.2.3) that rpcbind's self-entries show for it.
//
// As the reference (rpcbind 1.2.6 src/rpcbind.c handle_ipv6_socket), an
// AF_INET6 socket without IPV6_V6ONLY is refused: netconfig cannot describe a
// dual-mode socket. The refused transport is not bound again by the daemon.
//
// The directory also holds the unit files (rpcbind.service, rpcbind.socket),
// rpcbind.tmpfiles and rpcbind.sysusers that `make install` copies to
// /usr/lib/systemd/system, /usr/lib/tmpfiles.d/rpcbind.conf and
// /usr/lib/sysusers.d/rpcbind.conf. Its debian/ subdirectory packages them
// with the daemon and rpcinfo as openrpcbind (`make deb`, debian/mkdeb.sh),
// at the paths Debian's rpcbind package uses (/sbin/rpcbind,
// /lib/systemd/system/...).
package systemd

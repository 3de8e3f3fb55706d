// Package daemon holds the process model of rpcbind: the command line of
// Debian's rpcbind 1.2.6 (getopt "adh:ilswfr", plus GNU long options of our
// own), the /run/rpcbind.lock flock, the privilege drop to _rpc, the
// re-exec that stands for fork+setsid (daemon(3)), signals and logging to
// syslog (ident "rpcbind", LOG_DAEMON, LOG_PID) or stderr.
//
// Nothing here speaks RPC; cmd/rpcbind wires this with the server, the
// service and the state files.
package daemon

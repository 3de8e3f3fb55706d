// Package server runs the transports of the portmapper: UDP (RFC 768) with
// packet info so that replies leave from the address a request was sent to,
// and the stream transports TCP and AF_UNIX with RFC 5531 §11 record marking.
//
// Every transport hands whole RPC messages to a Handler and sends back what
// it returns. UDP uses a few reader goroutines per socket, each with its own
// buffers, waiting in a blocking recvmmsg off the runtime's poller. Streams are served by a few event loops, each with its own epoll
// set (EngineEpoll, the default), or by a goroutine per connection
// (EngineGoroutine); both answer pipelined requests in order, cap the
// number of connections and close idle ones.
// Handlers run under recover. Shutdown unblocks every read and waits.
//
// Listen creates the reference listening set (rpcbind 1.2.6: the AF_UNIX
// stream socket /run/rpcbind.sock, udp/tcp 0.0.0.0:111 and udp6/tcp6
// [::]:111 with IPV6_V6ONLY), plus the abstract socket @/run/rpcbind.sock;
// FromListener and FromPacketConn take sockets opened by someone else
// (systemd socket activation).
package server

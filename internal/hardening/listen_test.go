package hardening

import "net"

type tcpLn struct{ net.Listener }

func (l tcpLn) Port() int { return l.Addr().(*net.TCPAddr).Port }

func netListen() (tcpLn, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	return tcpLn{ln}, err
}

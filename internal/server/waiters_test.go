package server

import (
	"net"
	"testing"
)

// TestWaiters: the goroutines that wait in blocking system calls are the
// UDP readers of every UDP socket and, with EngineEpoll and a stream
// socket, the stream loops; the goroutine engine's connections wait in the
// runtime's poller and count for nothing.
func TestWaiters(t *testing.T) {
	udp := &Socket{Netid: "udp", Packet: &net.UDPConn{}}
	tcp := &Socket{Netid: "tcp", Listener: &net.TCPListener{}}
	tests := []struct {
		name  string
		opt   Options
		socks []*Socket
		want  int
	}{
		{"none", Options{UDPReaders: 1, StreamLoops: 1}, nil, 0},
		{"two udp, epoll", Options{UDPReaders: 1, StreamLoops: 1}, []*Socket{udp, udp, tcp, tcp}, 3},
		{"readers and loops of 4 CPUs", Options{UDPReaders: 2, StreamLoops: 2}, []*Socket{udp, udp, tcp}, 6},
		{"udp only", Options{UDPReaders: 1, StreamLoops: 1}, []*Socket{udp}, 1},
		{"streams only", Options{UDPReaders: 1, StreamLoops: 2}, []*Socket{tcp, tcp}, 2},
		{"goroutine engine", Options{UDPReaders: 1, StreamLoops: 1, StreamEngine: EngineGoroutine}, []*Socket{udp, udp, tcp}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opt.Log = quietLog()
			if got := New(nil, tt.opt).Waiters(tt.socks); got != tt.want {
				t.Errorf("Waiters = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestLoopsFor(t *testing.T) {
	for procs, want := range map[int]int{0: 1, 1: 1, 2: 1, 3: 1, 4: 2, 9: 4} {
		if got := LoopsFor(procs); got != want {
			t.Errorf("LoopsFor(%d) = %d, want %d", procs, got, want)
		}
	}
}

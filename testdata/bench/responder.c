/* responder: the machine's ceiling for rpcbench. A trivial single-threaded
 * ONC RPC responder on port 111 (UDP and TCP, IPv4) that answers every call
 * with an accepted SUCCESS reply carrying one zero word (a GETPORT-shaped
 * reply). It does no decoding beyond the XID; it is not a portmapper.
 * Build: gcc -O2 -o responder responder.c */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXC 1024

static size_t reply(const unsigned char *req, size_t n, unsigned char *out) {
	uint32_t w[7] = {0, htonl(1), 0, 0, 0, 0, 0};
	if (n < 4) return 0;
	memcpy(&w[0], req, 4);
	memcpy(out, w, sizeof w);
	return sizeof w;
}

int main(void) {
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(111)};
	int one = 1, u = socket(AF_INET, SOCK_DGRAM, 0), t = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(u, (void *)&a, sizeof a) || bind(t, (void *)&a, sizeof a) || listen(t, 4096)) {
		perror("responder: bind");
		return 1;
	}
	struct pollfd p[MAXC];
	unsigned char buf[65536], out[64];
	int n = 2;
	p[0].fd = u; p[0].events = POLLIN;
	p[1].fd = t; p[1].events = POLLIN;
	for (;;) {
		if (poll(p, n, -1) < 0 && errno != EINTR) return 1;
		if (p[0].revents & POLLIN) {
			struct sockaddr_in from; socklen_t fl = sizeof from;
			ssize_t r = recvfrom(u, buf, sizeof buf, 0, (void *)&from, &fl);
			size_t m = r > 0 ? reply(buf, r, out) : 0;
			if (m) sendto(u, out, m, 0, (void *)&from, fl);
		}
		if ((p[1].revents & POLLIN) && n < MAXC) {
			int c = accept(t, NULL, NULL);
			if (c >= 0) { p[n].fd = c; p[n].events = POLLIN; p[n].revents = 0; n++; }
		}
		for (int i = 2; i < n; i++) {
			if (!p[i].revents) continue;
			ssize_t r = read(p[i].fd, buf, sizeof buf);
			if (r <= 4) { close(p[i].fd); p[i] = p[--n]; i--; continue; }
			/* one record per read: closed-loop clients send one call at a time */
			uint32_t mark = htonl(0x80000000u | 28);
			size_t m = reply(buf + 4, r - 4, out + 4);
			memcpy(out, &mark, 4);
			if (m) write(p[i].fd, out, m + 4);
		}
	}
}

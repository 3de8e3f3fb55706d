/*
 * tirpcclient: drives the real libtirpc client calls against the local
 * rpcbind so that tests prove interop with the C library every Linux RPC
 * service links against. Output is one stable line per result.
 *
 * Build: gcc -Wall -O2 -I/usr/include/tirpc -o tirpcclient tirpcclient.c -ltirpc
 *
 * Exit status: 0 success, 1 the call completed but answered FALSE / not found,
 * 2 RPC or library failure, 64 usage error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <rpc/pmap_clnt.h>
#include <rpc/pmap_prot.h>
#include <rpc/rpc.h>
#include <rpc/rpcb_clnt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *prog_name = "tirpcclient";

static void usage(void)
{
	fprintf(stderr,
		"usage: %s COMMAND ARGS...\n"
		"  set PROG VERS NETID UADDR       rpcb_set (taddr from uaddr2taddr)\n"
		"  unset PROG VERS [NETID|-]       rpcb_unset (- = NULL nconf, all netids)\n"
		"  pmapset PROG VERS udp|tcp|N PORT pmap_set\n"
		"  pmapunset PROG VERS             pmap_unset\n"
		"  getaddr PROG VERS NETID [HOST]  rpcb_getaddr, prints the uaddr\n"
		"  getport PROG VERS udp|tcp|N [IP] pmap_getport (UDP v2 GETPORT)\n"
		"  pmapdump [IP]                   pmap_getmaps (TCP v2 DUMP)\n"
		"  dump NETID [HOST]               rpcb_getmaps (v4 DUMP, then v3)\n"
		"  gettime [HOST]                  rpcb_gettime, checks it against time()\n"
		"  uaddr2taddr NETID UADDR         rpcb_uaddr2taddr, prints maxlen, len, hex\n"
		"  taddr2uaddr NETID HEX           rpcb_taddr2uaddr, prints the uaddr\n"
		"HOST defaults to the netid's loopback address (gettime: localhost),\n"
		"IP to 127.0.0.1.\n",
		prog_name);
	exit(64);
}

static unsigned long num(const char *s)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 0);
	if (errno || *s == '\0' || *end != '\0') {
		fprintf(stderr, "%s: bad number %s\n", prog_name, s);
		exit(64);
	}
	return v;
}

static int proto(const char *s)
{
	if (strcmp(s, "udp") == 0)
		return IPPROTO_UDP;
	if (strcmp(s, "tcp") == 0)
		return IPPROTO_TCP;
	return (int)num(s);
}

static struct netconfig *nconf(const char *netid)
{
	struct netconfig *nc = getnetconfigent(netid);
	if (nc == NULL) {
		fprintf(stderr, "%s: getnetconfigent %s: %s\n", prog_name, netid,
			nc_sperror());
		exit(2);
	}
	return nc;
}

/* default_host names the loopback address of the netid's family. */
static const char *default_host(const struct netconfig *nc)
{
	if (strcmp(nc->nc_protofmly, NC_INET6) == 0)
		return "::1";
	if (strcmp(nc->nc_protofmly, NC_INET) == 0)
		return "127.0.0.1";
	return "localhost";
}

static void sin_of(struct sockaddr_in *sin, const char *ip)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	if (inet_pton(AF_INET, ip, &sin->sin_addr) != 1) {
		fprintf(stderr, "%s: bad IPv4 address %s\n", prog_name, ip);
		exit(64);
	}
}

/* bool_result prints "NAME: true|false" and reports an RPC failure on stderr. */
static int bool_result(const char *name, bool_t ok)
{
	printf("%s: %s\n", name, ok ? "true" : "false");
	if (ok)
		return 0;
	if (rpc_createerr.cf_stat != RPC_SUCCESS) {
		fprintf(stderr, "%s\n", clnt_spcreateerror(name));
		return 2;
	}
	return 1;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	const char *cmd = argv[1];
	int n = argc - 2;
	char **a = argv + 2;
	rpc_createerr.cf_stat = RPC_SUCCESS;

	if (strcmp(cmd, "set") == 0 && n == 4) {
		struct netconfig *nc = nconf(a[2]);
		struct netbuf *taddr = uaddr2taddr(nc, a[3]);
		if (taddr == NULL) {
			fprintf(stderr, "%s: uaddr2taddr %s failed\n", prog_name, a[3]);
			return 2;
		}
		return bool_result("set", rpcb_set(num(a[0]), num(a[1]), nc, taddr));
	}
	if (strcmp(cmd, "unset") == 0 && (n == 2 || n == 3)) {
		struct netconfig *nc = NULL;
		if (n == 3 && strcmp(a[2], "-") != 0)
			nc = nconf(a[2]);
		return bool_result("unset", rpcb_unset(num(a[0]), num(a[1]), nc));
	}
	if (strcmp(cmd, "pmapset") == 0 && n == 4) {
		return bool_result("pmapset",
				   pmap_set(num(a[0]), num(a[1]), proto(a[2]), (int)num(a[3])));
	}
	if (strcmp(cmd, "pmapunset") == 0 && n == 2) {
		return bool_result("pmapunset", pmap_unset(num(a[0]), num(a[1])));
	}
	if (strcmp(cmd, "getaddr") == 0 && (n == 3 || n == 4)) {
		struct netconfig *nc = nconf(a[2]);
		char buf[512];
		struct netbuf nb = { .maxlen = sizeof(buf), .len = 0, .buf = buf };
		const char *host = n == 4 ? a[3] : default_host(nc);
		if (!rpcb_getaddr(num(a[0]), num(a[1]), nc, &nb, host)) {
			printf("getaddr: none\n");
			fprintf(stderr, "%s\n", clnt_spcreateerror("getaddr"));
			return rpc_createerr.cf_stat == RPC_PROGNOTREGISTERED ? 1 : 2;
		}
		char *uaddr = taddr2uaddr(nc, &nb);
		printf("getaddr: %s\n", uaddr ? uaddr : "(taddr2uaddr failed)");
		return uaddr ? 0 : 2;
	}
	if (strcmp(cmd, "getport") == 0 && (n == 3 || n == 4)) {
		struct sockaddr_in sin;
		sin_of(&sin, n == 4 ? a[3] : "127.0.0.1");
		u_short port = pmap_getport(&sin, num(a[0]), num(a[1]), proto(a[2]));
		printf("getport: %u\n", port);
		if (port != 0)
			return 0;
		if (rpc_createerr.cf_stat != RPC_SUCCESS &&
		    rpc_createerr.cf_stat != RPC_PROGNOTREGISTERED) {
			fprintf(stderr, "%s\n", clnt_spcreateerror("getport"));
			return 2;
		}
		return 1;
	}
	if (strcmp(cmd, "pmapdump") == 0 && n <= 1) {
		struct sockaddr_in sin;
		sin_of(&sin, n == 1 ? a[0] : "127.0.0.1");
		struct pmaplist *l = pmap_getmaps(&sin);
		if (l == NULL && rpc_createerr.cf_stat != RPC_SUCCESS) {
			fprintf(stderr, "%s\n", clnt_spcreateerror("pmapdump"));
			return 2;
		}
		for (; l != NULL; l = l->pml_next)
			printf("pmapdump: %lu %lu %lu %lu\n", l->pml_map.pm_prog,
			       l->pml_map.pm_vers, l->pml_map.pm_prot, l->pml_map.pm_port);
		return 0;
	}
	if (strcmp(cmd, "dump") == 0 && (n == 1 || n == 2)) {
		struct netconfig *nc = nconf(a[0]);
		rpcblist *l = rpcb_getmaps(nc, n == 2 ? a[1] : default_host(nc));
		if (l == NULL && rpc_createerr.cf_stat != RPC_SUCCESS) {
			fprintf(stderr, "%s\n", clnt_spcreateerror("dump"));
			return 2;
		}
		for (; l != NULL; l = l->rpcb_next)
			printf("dump: %lu %lu %s %s %s\n",
			       (unsigned long)l->rpcb_map.r_prog,
			       (unsigned long)l->rpcb_map.r_vers, l->rpcb_map.r_netid,
			       l->rpcb_map.r_addr, l->rpcb_map.r_owner);
		return 0;
	}
	if (strcmp(cmd, "gettime") == 0 && n <= 1) {
		time_t t = 0;
		if (!rpcb_gettime(n == 1 ? a[0] : "localhost", &t)) {
			fprintf(stderr, "%s\n", clnt_spcreateerror("gettime"));
			return 2;
		}
		long d = (long)(t - time(NULL));
		if (d < -60 || d > 60) {
			printf("gettime: off by %lds (%ld)\n", d, (long)t);
			return 1;
		}
		printf("gettime: ok\n");
		return 0;
	}
	if (strcmp(cmd, "uaddr2taddr") == 0 && n == 2) {
		struct netconfig *nc = nconf(a[0]);
		struct netbuf *nb = rpcb_uaddr2taddr(nc, a[1]);
		if (nb == NULL) {
			printf("uaddr2taddr: none\n");
			if (rpc_createerr.cf_stat != RPC_SUCCESS) {
				fprintf(stderr, "%s\n", clnt_spcreateerror("uaddr2taddr"));
				return 2;
			}
			return 1;
		}
		printf("uaddr2taddr: maxlen=%u len=%u ", nb->maxlen, nb->len);
		for (unsigned i = 0; i < nb->len; i++)
			printf("%02x", ((unsigned char *)nb->buf)[i]);
		printf("\n");
		return 0;
	}
	if (strcmp(cmd, "taddr2uaddr") == 0 && n == 2) {
		struct netconfig *nc = nconf(a[0]);
		size_t hl = strlen(a[1]);
		if (hl % 2 != 0)
			usage();
		unsigned char *buf = calloc(1, hl / 2 + 1);
		for (size_t i = 0; i < hl / 2; i++) {
			int hi = hexval(a[1][2 * i]), lo = hexval(a[1][2 * i + 1]);
			if (hi < 0 || lo < 0)
				usage();
			buf[i] = (unsigned char)(hi << 4 | lo);
		}
		struct netbuf nb = { .maxlen = hl / 2, .len = hl / 2, .buf = buf };
		char *u = rpcb_taddr2uaddr(nc, &nb);
		if (u == NULL) {
			printf("taddr2uaddr: none\n");
			if (rpc_createerr.cf_stat != RPC_SUCCESS) {
				fprintf(stderr, "%s\n", clnt_spcreateerror("taddr2uaddr"));
				return 2;
			}
			return 1;
		}
		printf("taddr2uaddr: \"%s\"\n", u);
		return 0;
	}
	usage();
	return 64;
}

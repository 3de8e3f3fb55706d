/*
 * libwrap_oracle: asks Debian's libwrap (libwrap0, hosts_ctl) what it decides
 * for daemon "rpcbind" and each client address on the command line, with
 * the given hosts.allow and hosts.deny, a client name of "unknown" (an
 * address that does not resolve) and user "unknown" (no IDENT), which is
 * what our hostsaccess package models.
 *
 *   libwrap_oracle ALLOW DENY ADDR... -> one "ADDR 0|1" line per address
 *
 * Build: gcc -o libwrap_oracle libwrap_oracle.c /usr/lib/x86_64-linux-gnu/libwrap.so.0
 * (libwrap0-dev is not needed: the two globals and hosts_ctl are declared
 * here.)
 */
#include <stdio.h>
#include <syslog.h>

extern char *hosts_allow_table, *hosts_deny_table;
extern int hosts_ctl(char *daemon, char *name, char *addr, char *user);
int allow_severity = LOG_INFO, deny_severity = LOG_WARNING;

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: libwrap_oracle ALLOW DENY ADDR...\n");
		return 2;
	}
	hosts_allow_table = argv[1];
	hosts_deny_table = argv[2];
	for (int i = 3; i < argc; i++)
		printf("%s %d\n", argv[i], hosts_ctl("rpcbind", "unknown", argv[i], "unknown"));
	return 0;
}

#!/bin/sh
# Runs inside the booted container (e2e.service, after multi-user.target) in
# DebMode: bookworm with nfs-common and Debian's rpcbind, no network. The
# host copied in /root/debs/{ours,next,debian}/*.deb and /root/rpcreg.
# Swaps Debian's rpcbind for openrpcbind with apt and back, upgrades
# openrpcbind to a newer build, swaps with plain dpkg -i, and checks after
# each step that the registrations, the files and the running binary are
# right. Writes /root/e2e.log ("figures" lines: registrations per step) and
# /root/e2e.result ("PASS" or the first failed check), then powers off.
LOG=/root/e2e.log
RES=/root/e2e.result
exec >"$LOG" 2>&1
. /root/lib.sh
fail=""
export DEBIAN_FRONTEND=noninteractive
OURS=$(ls /root/debs/ours/openrpcbind_*.deb)
NEXT=$(ls /root/debs/next/openrpcbind_*.deb)
DEBIAN=$(ls /root/debs/debian/rpcbind_*.deb)
NTEST=8 # programs rpcreg registers, on tcp and udp: 16 entries

check() { # check NAME COMMAND...: record the first failure; false on failure
	name=$1; shift
	if "$@"; then echo "ok   $name"; return 0; fi
	echo "FAIL $name"
	[ -n "$fail" ] || fail=${name:-unnamed check}
	return 1
}
waitfor() { # waitfor SECONDS COMMAND...: poll until true (bounded)
	n=$(( $1 * 10 )); shift
	while [ "$n" -gt 0 ]; do "$@" && return 0; sleep 0.1; n=$((n - 1)); done
	"$@"
}
show() { echo "\$ $*"; "$@"; }
state() { [ "$(systemctl show -P ActiveState "$1")" = "$2" ]; }
netids() { # sorted netids rpcinfo shows for program $1
	rpcinfo 2>/dev/null | awk -v p="$1" '$1 == p { print $3 }' | sort -u | tr '\n' ' '
}
statd4() { [ "$(netids 100024)" = "tcp tcp6 udp udp6 " ]; }
ntest() { rpcinfo 2>/dev/null | awk -v lo=536870912 -v n=$NTEST '$1 >= lo && $1 < lo + n' | wc -l; }
nstatd() { rpcinfo 2>/dev/null | awk '$1 == 100024' | wc -l; }
tests_kept() { [ "$(ntest)" = $((NTEST * 2)) ]; }
pid() { systemctl show -P MainPID rpcbind.service; }
owner() { dpkg-query -S "$1" 2>/dev/null | cut -d: -f1; }
status() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null; }
version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null; }
figures() { # figures STEP: one line the host test logs
	echo "figures $1: test entries $(ntest)/$((NTEST * 2)), statd entries $(nstatd) (rpc-statd $(systemctl show -P ActiveState rpc-statd)), all $(rpcinfo 2>/dev/null | tail -n +2 | wc -l); rpcbind.service pid $(pid) $(readlink /proc/$(pid)/exe 2>/dev/null); openrpcbind=$(status openrpcbind) $(version openrpcbind) rpcbind=$(status rpcbind) $(version rpcbind)"
}
# The running daemon is the binary at /sbin/rpcbind, not a deleted file, and
# /sbin/rpcbind belongs to package $1.
runs_pkg_binary() {
	p=$(pid); [ "$p" -gt 0 ] 2>/dev/null || return 1
	case $(readlink "/proc/$p/exe") in *deleted*) return 1 ;; esac
	cmp -s "/proc/$p/exe" /sbin/rpcbind && [ "$(owner /sbin/rpcbind)" = "$1" ]
}
# Every thread of the daemon: no capability in any set, no_new_privs.
no_privs() { no_privs_of "$(pid)"; }
files_present() { # every file and link package $1 lists exists
	missing=$(dpkg-query -L "$1" | while read -r f; do [ -e "$f" ] || [ -L "$f" ] || echo "$f"; done)
	[ -z "$missing" ] || { echo "     missing: $missing"; return 1; }
}
# rpc.statd answers NULL at the port rpcbind gives (v2 GETPORT, udp and tcp).
statd_answers() { rpcinfo -u 127.0.0.1 100024 1 >/dev/null 2>&1 && rpcinfo -t 127.0.0.1 100024 1 >/dev/null 2>&1; }
restart_statd() {
	check "$1: rpc-statd restarts" systemctl restart rpc-statd
	check "$1: rpc-statd registers on four netids" waitfor 10 statd4
	if ! check "$1: rpc-statd answers" waitfor 5 statd_answers; then
		show rpcinfo
		show ss -lntup
		show rpcinfo -u 127.0.0.1 100024 1
		show rpcinfo -t 127.0.0.1 100024 1
		show rpcinfo -T udp 127.0.0.1 100024 1
		show journalctl -b --no-pager -u rpc-statd -u rpcbind
	fi
}
apt_install() { # apt without network: the package files only
	show apt-get install -y -q --no-install-recommends "$@" </dev/null
}

echo "== packages: $OURS $NEXT $DEBIAN"
show dpkg-query -W rpcbind nfs-common

echo "== 0. Debian's rpcbind, rpc-statd and test registrations"
check "socket active"            waitfor 10 state rpcbind.socket active
check "rpcinfo answers"          sh -c 'rpcinfo -p >/dev/null'
check "statd starts"             systemctl start rpc-statd
check "statd on four netids"     waitfor 10 statd4
check "rpcreg registers"         /root/rpcreg $NTEST
check "test entries listed"      tests_kept
check "Debian's binary runs"     waitfor 5 runs_pkg_binary rpcbind
# The admin's edit to the conffile must survive the swap.
printf '\n# kept across the swap\n' >>/etc/default/rpcbind
check "statd answers"            statd_answers
show rpcinfo -s
figures "0 debian rpcbind"

echo "== 1. apt-get install ./openrpcbind: replaces rpcbind, keeps nfs-common"
check "apt installs openrpcbind" apt_install "$OURS"
check "openrpcbind installed"    [ "$(status openrpcbind)" = installed ]
check "rpcbind removed"          sh -c "[ \"\$(dpkg-query -W -f='\${db:Status-Status}' rpcbind 2>/dev/null)\" != installed ]"
check "nfs-common still installed" [ "$(status nfs-common)" = installed ]
check "conffile edit kept"       grep -q '^# kept across the swap' /etc/default/rpcbind
check "no conffile copies left"  sh -c '! ls /etc/default/rpcbind.dpkg-* 2>/dev/null'
check "every file of openrpcbind present" files_present openrpcbind
check "/sbin/rpcbind is ours"    [ "$(owner /sbin/rpcbind)" = openrpcbind ]
check "our hardened unit in force" sh -c '[ "$(systemctl show -P NoNewPrivileges rpcbind.service)" = yes ]'
check "socket active"            waitfor 10 state rpcbind.socket active
check "service active"           waitfor 10 state rpcbind.service active
check "runs the new binary"      waitfor 5 runs_pkg_binary openrpcbind
check "all threads unprivileged" no_privs
check "test entries kept (warm start across the swap)" tests_kept
figures "1 after apt swap"
restart_statd "1"
show rpcinfo -s
figures "1 after statd restart"

echo "== 2. systemctl restart rpcbind keeps the registrations"
old=$(pid)
check "restart"                  systemctl restart rpcbind
check "service active"           waitfor 10 state rpcbind.service active
check "new process"              [ "$(pid)" != "$old" ]
check "test entries kept"        tests_kept
check "statd entries kept"       statd4
check "statd answers"            statd_answers
check "all threads unprivileged" no_privs
figures "2 after restart"

echo "== 3. upgrade openrpcbind to a newer build of itself"
old=$(pid); oldv=$(version openrpcbind)
check "apt upgrades openrpcbind" apt_install "$NEXT"
check "version rose"             sh -c "[ \"\$(dpkg-query -W -f='\${Version}' openrpcbind)\" != '$oldv' ] && dpkg --compare-versions \"\$(dpkg-query -W -f='\${Version}' openrpcbind)\" gt '$oldv'"
check "service active"           waitfor 10 state rpcbind.service active
check "restarted"                [ "$(pid)" != "$old" ]
check "runs the new binary"      waitfor 5 runs_pkg_binary openrpcbind
check "test entries kept"        tests_kept
figures "3 after upgrade"
restart_statd "3"
check "all threads unprivileged" no_privs

echo "== 4. apt-get install ./rpcbind_*.deb (Debian's) rolls back"
check "apt installs rpcbind"     apt_install "$DEBIAN"
check "rpcbind installed"        [ "$(status rpcbind)" = installed ]
check "openrpcbind removed"      sh -c "[ \"\$(dpkg-query -W -f='\${db:Status-Status}' openrpcbind 2>/dev/null)\" != installed ]"
check "nfs-common still installed" [ "$(status nfs-common)" = installed ]
check "every file of rpcbind present" files_present rpcbind
check "socket active"            waitfor 10 state rpcbind.socket active
check "service active"           waitfor 10 state rpcbind.service active
check "runs Debian's binary"     waitfor 5 runs_pkg_binary rpcbind
check "test entries kept (warm start across the roll-back)" tests_kept
figures "4 after roll-back"
restart_statd "4"
figures "4 after statd restart"

echo "== 5. dpkg -i ./openrpcbind over Debian's rpcbind (no apt) loses no file"
check "dpkg -i openrpcbind"      show dpkg -i "$OURS"
check "openrpcbind installed"    [ "$(status openrpcbind)" = installed ]
check "rpcbind removed"          sh -c "[ \"\$(dpkg-query -W -f='\${db:Status-Status}' rpcbind 2>/dev/null)\" != installed ]"
check "every file of openrpcbind present" files_present openrpcbind
check "/sbin/rpcbind exists and is ours" sh -c '[ -x /sbin/rpcbind ] && [ "$(dpkg-query -S /sbin/rpcbind | cut -d: -f1)" = openrpcbind ]'
check "service active"           waitfor 10 state rpcbind.service active
check "runs the new binary"      waitfor 5 runs_pkg_binary openrpcbind
check "test entries kept"        tests_kept
figures "5 after dpkg -i swap"

echo "== 6. dpkg back: remove openrpcbind, dpkg -i Debian's rpcbind"
check "dpkg -r openrpcbind"      show dpkg -r --force-depends openrpcbind
check "dpkg -i rpcbind"          show dpkg -i "$DEBIAN"
check "every file of rpcbind present" files_present rpcbind
check "/sbin/rpcbind is Debian's" [ "$(owner /sbin/rpcbind)" = rpcbind ]
check "nfs-common still installed" [ "$(status nfs-common)" = installed ]
check "service active"           waitfor 10 state rpcbind.service active
check "runs Debian's binary"     waitfor 5 runs_pkg_binary rpcbind
check "test entries kept"        tests_kept
figures "6 after dpkg roll-back"
show rpcinfo

echo "== 7. purging openrpcbind leaves Debian's rpcbind running and enabled"
check "dpkg -P openrpcbind"      show dpkg -P openrpcbind
check "/run/rpcbind kept"        test -d /run/rpcbind
check "/etc/default/rpcbind kept" sh -c 'grep -q "^OPTIONS=\"-w\"" /etc/default/rpcbind && dpkg-query -S /etc/default/rpcbind | grep -q "^rpcbind:"'
show rpcinfo
check "rpcbind.socket enabled"   sh -c '[ "$(systemctl is-enabled rpcbind.socket)" = enabled ]'
check "service active"           state rpcbind.service active
check "test entries kept"        tests_kept
check "dpkg --audit clean"       sh -c '[ -z "$(dpkg --audit)" ]'
figures "7 after purge of openrpcbind"

if [ -n "$fail" ]; then
	echo "== diagnostics"
	show systemctl status --no-pager -l rpcbind.socket rpcbind.service rpc-statd.service
	show systemctl --failed --no-pager
	show journalctl -b --no-pager -o short-monotonic -n 300
fi
echo "${fail:-PASS}" >"$RES"
sync
systemctl --no-block poweroff

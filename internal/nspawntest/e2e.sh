#!/bin/sh
# Runs inside the booted container (e2e.service, after multi-user.target).
# Writes /root/e2e.log (transcript) and /root/e2e.result ("PASS" or the
# first failed check), then powers the container off.
LOG=/root/e2e.log
RES=/root/e2e.result
exec >"$LOG" 2>&1
. /root/lib.sh
fail=""

check() { # check NAME COMMAND...: record the first failure
	name=$1; shift
	if "$@"; then echo "ok   $name"; else echo "FAIL $name"; [ -n "$fail" ] || fail=$name; fi
}
waitfor() { # waitfor SECONDS COMMAND...: poll until true (bounded)
	n=$(( $1 * 10 )); shift
	while [ "$n" -gt 0 ]; do "$@" && return 0; sleep 0.1; n=$((n - 1)); done
	"$@"
}
state() { [ "$(systemctl show -P ActiveState "$1")" = "$2" ]; }
result() { [ "$(systemctl show -P Result "$1")" = "$2" ]; }
netids() { # sorted netids rpcinfo shows for program $1
	rpcinfo 2>/dev/null | awk -v p="$1" '$1 == p { print $3 }' | sort -u | tr '\n' ' '
}
statd4() { [ "$(netids 100024)" = "tcp tcp6 udp udp6 " ]; }
runs_as() { [ "$(ps -o user= -p "$(systemctl show -P MainPID rpcbind.service)")" = "$1" ]; }
show() { echo "\$ $*"; "$@"; }
# Every thread of the daemon: no capability in any set, no_new_privs.
no_privs() { no_privs_of "$(systemctl show -P MainPID rpcbind.service)"; }

echo "== $(cat /root/e2e.daemon 2>/dev/null)"
show systemctl cat rpcbind.service rpcbind.socket
show ls -l /usr/sbin/rpcbind /sbin/rpcbind

echo "== 1. socket activation"
check "socket starts"          systemctl start rpcbind.socket
check "socket active"          state rpcbind.socket active
check "service not yet started" state rpcbind.service inactive
show ss -xlp
if systemctl cat rpcbind.socket | grep -q '^ListenStream=@/run/rpcbind.sock'; then
	check "abstract socket listens" sh -c "ss -xl | grep -q '@/run/rpcbind.sock'"
fi
check "path socket listens"    test -S /run/rpcbind.sock

echo "== 2. rpcinfo -p activates the service"
show rpcinfo -p
check "rpcinfo -p answers"     sh -c "rpcinfo -p | awk '\$1 == 100000 && \$2 == 2 && \$3 == \"tcp\" && \$4 == 111 { f = 1 } END { exit !f }'"
check "service active"         waitfor 10 state rpcbind.service active
check "runs as _rpc"           waitfor 5 runs_as _rpc
show systemctl show -p NoNewPrivileges -p ProtectSystem -p ProtectHome -p PrivateDevices -p CapabilityBoundingSet -p SystemCallFilter rpcbind.service
if grep -q 'daemon=ours units=ours' /root/e2e.daemon; then
	# The hardened unit is the one in force, and the daemon works under it.
	check "NoNewPrivileges=yes"   sh -c "[ \"\$(systemctl show -P NoNewPrivileges rpcbind.service)\" = yes ]"
	check "ProtectSystem=strict"  sh -c "[ \"\$(systemctl show -P ProtectSystem rpcbind.service)\" = strict ]"
	check "installed by make install" sh -c "zcat /usr/share/man/man8/rpcbind.8.gz | grep -q openrpcbind"
	check "all threads unprivileged (CapBnd empty too)" no_privs
	check "Type=notify, ready"   sh -c "[ \"\$(systemctl show -P Type rpcbind.service)\" = notify ]"
	check "STATUS= summary"      sh -c "systemctl show -P StatusText rpcbind.service | grep -q '^serving [0-9]* transports, [0-9]* registrations'"
fi
show systemctl show -p StatusText -p NRestarts -p MainPID rpcbind.service
show rpcinfo
check "local self-entry is the path" sh -c "rpcinfo | awk '\$3 == \"local\" && \$1 == 100000 { print \$4 }' | sort -u | grep -qx /run/rpcbind.sock"
check "tcp6/udp6 self-entries" sh -c "rpcinfo | grep -q '100000    4    tcp6      ::.0.111' && rpcinfo | grep -q '100000    4    udp6      ::.0.111'"

echo "== 3. rpc-statd registers on four netids"
check "statd starts"           systemctl start rpc-statd
check "statd on udp tcp udp6 tcp6" waitfor 10 statd4
show rpcinfo

echo "== 4. restart keeps the registration"
check "restart"                systemctl restart rpcbind.service
check "active after restart"   waitfor 10 state rpcbind.service active
check "socket still active"    state rpcbind.socket active
check "statd kept after restart" statd4
show rpcinfo -p
show ls -la /run/rpcbind /run/rpcbind.sock /run/rpcbind.lock

echo "== 5. clean stop"
check "stop"                   systemctl stop rpc-statd rpcbind.service rpcbind.socket
for u in rpc-statd.service rpcbind.service rpcbind.socket; do
	check "$u inactive"        state $u inactive
	check "$u Result=success"  result $u success
done
show journalctl -b -q --no-pager -u rpcbind.service -u rpcbind.socket
check "no errors logged by rpcbind" sh -c "[ -z \"\$(journalctl -b -q -p err -u rpcbind.service -u rpcbind.socket)\" ]"

echo "== 6. a dual-mode IPv6 socket is refused with the reference's message"
mkdir -p /run/systemd/system/rpcbind.socket.d
printf '[Socket]\nListenStream=\nListenDatagram=\nListenStream=/run/rpcbind.sock\nBindIPv6Only=both\nListenStream=[::]:111\n' \
	>/run/systemd/system/rpcbind.socket.d/dual.conf
systemctl daemon-reload
since=$(date '+%Y-%m-%d %H:%M:%S')
check "dual socket starts"     systemctl start rpcbind.socket
show rpcinfo
check "local still served"     sh -c "rpcinfo | awk '\$3 == \"local\"' | grep -q /run/rpcbind.sock"
check "dual-mode message logged" sh -c "journalctl -q --since '$since' -u rpcbind.service | grep -q 'systemd has passed an IPv4/IPv6 dual-mode socket.'"
check "no tcp6 self-entry"     sh -c "! rpcinfo | grep -q tcp6"
show journalctl -q --no-pager --since "$since" -u rpcbind.service
systemctl stop rpcbind.service rpcbind.socket
rm -r /run/systemd/system/rpcbind.socket.d
systemctl daemon-reload

if [ -n "$fail" ]; then
	echo "== diagnostics"
	show systemctl status --no-pager -l rpcbind.socket rpcbind.service rpc-statd.service
	show systemctl --failed --no-pager
	show journalctl -b --no-pager -o short-monotonic -n 400
fi
echo "${fail:-PASS}" >"$RES"
sync
systemctl --no-block poweroff

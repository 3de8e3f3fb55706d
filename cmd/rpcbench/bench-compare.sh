#!/usr/bin/env bash
# bench-compare.sh OURS_BIN RPCBENCH_BIN RESPONDER_BIN [SECONDS] [ROUNDS]
# Runs the same workloads against our daemon, the reference rpcbind and a
# trivial C responder, each in its own network + mount namespace on port 111,
# ROUNDS times, and prints the medians as a table (rpcbench report).
set -euo pipefail
ours=$1 bench=$2 resp=$3 secs=${4:-3} rounds=${5:-3}
ref=$(command -v rpcbind || ls /sbin/rpcbind)
out=$(mktemp)
trap 'rm -f "$out"' EXIT

one() { # daemon round
	local d=$1 r=$2 start
	case $d in
	# The hardening caps of 1,024 registrations and 256 KiB per owner (ours
	# only) would refuse the 10,000-registration workloads.
	ours) start="$ours -f -w --max-regs-per-owner=20000 --max-reg-bytes-per-owner=4194304" ;;
	reference) start="$ref -f -w" ;;
	responder) start="$resp" ;;
	esac
	timeout 600 unshare -n -m bash -s <<SCRIPT | sed "s/^/daemon=$d round=$r /" | tee -a "$out"
set -e
ip link set lo up
mount -t tmpfs tmpfs /run
mkdir -p /run/rpcbind && chown _rpc /run/rpcbind 2>/dev/null || true
$start >/dev/null 2>&1 &
pid=\$!
for i in \$(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/111) 2>/dev/null && break; sleep 0.05; done
sleep 0.3
b() { $bench -pid \$pid -d ${secs}s "\$@" || true; }
b -p idle -label idle
b -t udp -p getport -c 64 -label getport-udp
b -t tcp -p getport -c 64 -label getport-tcp
b -t tcpconn -p getport -c 64 -label tcpconn
if [ $d != responder ]; then
	b -t udp -p getaddr -c 64 -label getaddr-udp
	b -t tcp -p getaddr -c 64 -label getaddr-tcp
	b -t udp -p getport -c 64 -preload 10 -label getport-udp-r10
	b -t udp -p getport -c 64 -preload 10000 -label getport-udp-r10000
	b -t tcp -p dump2 -c 8 -preload 10000 -label dump2-tcp-r10000
	b -t tcp -p dump4 -c 8 -preload 10000 -label dump4-tcp-r10000
	b -p idle -preload 10000 -label idle-r10000
	b -t udp -p setunset -n 10000 -c 1 -label setunset-w
fi
kill \$pid 2>/dev/null || true; wait \$pid 2>/dev/null || true
SCRIPT
}

for r in $(seq "$rounds"); do
	for d in ours reference responder; do one $d "$r" || echo "bench-compare: $d round $r failed" >&2; done
done
echo
echo "bench-compare: $(date -u +%F), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), ${secs}s per workload, median of $rounds rounds"
"$bench" report <"$out"

#!/usr/bin/env bash
# A real two-node Slurm (22.05 from Debian) on localhost for the tests:
# munged, slurmctld and two slurmd (-N node1, -N node2) on distinct ports.
#   scripts/slurm-local.sh start   install if missing, start what is not running, wait until idle
#   scripts/slurm-local.sh stop    stop only the daemons this script started (by their pid files)
# Idempotent; needs root; no systemd.
set -euo pipefail
state=/var/lib/slurmrun-test
conf=/etc/slurm/slurm.conf
host=$(hostname -s)
daemons=(slurmctld node1 node2)

pidfile() { echo "$state/$1.pid"; }
# running: the pid file names a live process of the expected program (a
# stale file left by a killed run may name a reused pid).
running() {
  local f pid; f=$(pidfile "$1")
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null && grep -qE 'slurm|munge' "/proc/$pid/comm" 2>/dev/null &&
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}

install() {
  if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurm-wlm munge >/dev/null
  fi
}

configure() {
  mkdir -p "$state" /etc/slurm /var/lib/slurm/slurmctld /var/log/slurm /run/munge /etc/munge
  getent hosts "$host" >/dev/null || echo "127.0.0.1 $host" >>/etc/hosts
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey -c -f -k /etc/munge/munge.key 2>/dev/null || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null
  fi
  chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
  local cpus=4
  cat >"$conf.tmp" <<CONF
# Written by slurmrun's scripts/slurm-local.sh: two nodes on one host for tests.
ClusterName=slurmrun
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
MessageTimeout=20
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd/%n
SlurmctldPidFile=$state/slurmctld.daemon.pid
SlurmdPidFile=$state/slurmd-%n.daemon.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd-%n.log
SlurmctldPort=16817
NodeName=node[1-2] NodeHostname=$host NodeAddr=127.0.0.1 Port=[17001-17002] CPUs=$cpus RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=node[1-2] Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
  mv "$conf.tmp" "$conf"
  mkdir -p /var/lib/slurm/slurmd/node1 /var/lib/slurm/slurmd/node2
}

start_daemon() {
  local name=$1; shift
  running "$name" && return 0
  setsid "$@" >>"/var/log/slurm/$name.out" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}

start() {
  [ "$(id -u)" = 0 ] || { echo "slurm-local: needs root" >&2; exit 1; }
  install
  configure
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged --force
    # munged forks into the background: record the daemon, not the starter.
    sleep 0.2
    pgrep -u munge -x munged | tail -1 >"$(pidfile munged)"
  fi
  start_daemon slurmctld /usr/sbin/slurmctld -D -i -f "$conf"
  sleep 0.5
  start_daemon node1 /usr/sbin/slurmd -D -N node1 -f "$conf"
  start_daemon node2 /usr/sbin/slurmd -D -N node2 -f "$conf"
  for _ in $(seq 1 150); do
    if [ "$(sinfo -h -N -o '%N %t' 2>/dev/null | grep -c idle)" = 2 ]; then
      echo "slurm-local: node1 and node2 idle"
      return 0
    fi
    # Nodes left down or drained by an earlier run come back.
    scontrol update nodename=node[1-2] state=resume >/dev/null 2>&1 || true
    sleep 0.2
  done
  echo "slurm-local: nodes did not become idle:" >&2
  sinfo -N >&2 || true
  tail -20 /var/log/slurm/slurmctld.log >&2 || true
  exit 1
}

stop() {
  for d in node1 node2 slurmctld munged; do
    running "$d" || { rm -f "$(pidfile "$d")"; continue; }
    local pid; pid=$(cat "$(pidfile "$d")")
    kill "$pid" 2>/dev/null || true
    # Wait for it to go (10 s), then kill it: a restart must not meet it.
    for _ in $(seq 1 100); do running "$d" || break; sleep 0.1; done
    running "$d" && kill -9 "$pid" 2>/dev/null
    rm -f "$(pidfile "$d")"
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

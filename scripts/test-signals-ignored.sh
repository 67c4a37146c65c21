#!/usr/bin/env bash
# Runs the test suite as `nohup make test` or `make test &` would: SIGHUP,
# SIGINT and SIGQUIT ignored, which every process it starts inherits. As
# root it runs in a pids cgroup of its own, so a runaway (a command that
# starts itself again) fails the run instead of filling the machine; the
# cgroup is removed afterwards.
set -euo pipefail
limit=${SLURMRUN_TEST_PIDS_MAX:-4096}
cg=""
if [ "$(id -u)" = 0 ]; then
  # cgroup v1's pids hierarchy, or cgroup v2 (pure or the hybrid's unified).
  for root in /sys/fs/cgroup/pids /sys/fs/cgroup /sys/fs/cgroup/unified; do
    [ -w "$root/cgroup.procs" ] || continue
    mkdir "$root/slurmrun-test-$$" 2>/dev/null || continue
    if [ -e "$root/slurmrun-test-$$/pids.max" ]; then
      cg="$root/slurmrun-test-$$"
      break
    fi
    rmdir "$root/slurmrun-test-$$"
  done
fi
cleanup() {
  if [ -n "$cg" ] && [ -d "$cg" ]; then
    echo "$$" > "$(dirname "$cg")/cgroup.procs" 2>/dev/null || true
    for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    rmdir "$cg" 2>/dev/null || true
  fi
}
trap cleanup EXIT
if [ -n "$cg" ] && [ -e "$cg/pids.max" ]; then
  echo "$limit" > "$cg/pids.max"
  echo "$$" > "$cg/cgroup.procs"
  echo "test-signals-ignored: at most $limit processes (cgroup $cg)"
else
  echo "test-signals-ignored: no pids cgroup here; running without a process bound"
fi
# Not exec: the EXIT trap removes the cgroup afterwards.
(trap '' HUP INT QUIT; "$@")

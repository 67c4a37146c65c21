#!/usr/bin/env bash
# Makes crun usable on this kind of machine (root): installs crun if missing,
# and on a cgroup v1/v2 hybrid mounts each controller that only cgroup v2
# has as a v1 hierarchy too, else crun fails with "cgroups in hybrid mode not
# supported, drop all controllers from cgroupv2". Idempotent; lasts until reboot.
set -euo pipefail
if ! command -v crun >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq crun >/dev/null
fi
unified=/sys/fs/cgroup/unified/cgroup.controllers
if [ -r "$unified" ]; then
  for c in $(cat "$unified"); do
    if ! mountpoint -q "/sys/fs/cgroup/$c"; then
      mkdir -p "/sys/fs/cgroup/$c"
      mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c"
    fi
  done
fi

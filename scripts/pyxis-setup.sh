#!/usr/bin/env bash
# Builds enroot and pyxis from the unmodified sources in ../shared/vendor and
# wires pyxis into the local two-node Slurm (scripts/slurm-local.sh), so that
# the tests run `srun --container-image=…` for real. Idempotent and quick when
# all is in place; root only. It installs programs, a plugstack entry and an
# enroot.conf with per-node paths (two "nodes" share this host), and restarts
# only the Slurm daemons slurm-local.sh started, only when pyxis was new.
#   SLURMRUN_VENDOR  where the tarballs are (default: ../shared/vendor beside the repository)
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "pyxis-setup: needs root" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
vendor=${SLURMRUN_VENDOR:-$(cd "$here/../.." && pwd)/shared/vendor}
prefix=/usr/local

need=()
for p in libbsd-dev libslurm-dev squashfs-tools jq parallel gcc make; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "$("$prefix/bin/enroot" version 2>/dev/null)" != 4.1.2 ]; then
  echo "pyxis-setup: building enroot 4.1.2"
  tar -xzf "$vendor/enroot-4.1.2.tar.gz" -C "$work"
  src=$(find "$work" -maxdepth 1 -mindepth 1 -type d -name 'enroot*' | head -1)
  # Without its git submodules: no makeself (enroot bundle), glibc and the
  # system's libbsd instead of musl (see ../shared/reference/test-lab.md).
  mkdir -p "$src/deps/makeself" "$src/deps/musl" "$src/deps/linux-headers"
  printf '#!/bin/sh\nexit 1\n' >"$src/deps/makeself/makeself.sh"
  chmod +x "$src/deps/makeself/makeself.sh"
  touch "$src/deps/musl/.stamp" "$src/deps/linux-headers/.stamp"
  make -C "$src" install FORCE_GLIBC=1 LDLIBS=-l:libbsd.so prefix="$prefix" >"$work/enroot.log" 2>&1 ||
    { tail -30 "$work/enroot.log" >&2; exit 1; }
fi

new_plugin=0
if [ ! -f "$prefix/lib/slurm/spank_pyxis.so" ]; then
  echo "pyxis-setup: building pyxis 0.24.0"
  tar -xzf "$vendor/pyxis-0.24.0.tar.gz" -C "$work"
  src=$(find "$work" -maxdepth 1 -mindepth 1 -type d -name 'pyxis*' | head -1)
  make -C "$src" install prefix="$prefix" >"$work/pyxis.log" 2>&1 || { tail -30 "$work/pyxis.log" >&2; exit 1; }
  new_plugin=1
fi
mkdir -p /etc/slurm/plugstack.conf.d
if [ "$(readlink /etc/slurm/plugstack.conf.d/pyxis.conf 2>/dev/null)" != "$prefix/share/pyxis/pyxis.conf" ]; then
  ln -sfn "$prefix/share/pyxis/pyxis.conf" /etc/slurm/plugstack.conf.d/pyxis.conf
  new_plugin=1
fi
grep -qs 'plugstack.conf.d' /etc/slurm/plugstack.conf ||
  echo 'include /etc/slurm/plugstack.conf.d/*.conf' >>/etc/slurm/plugstack.conf

# Per-node enroot paths: both nodes' tasks would share one container name.
# SLURM_TOPOLOGY_ADDR is in the task's environment and in the step's, where
# pyxis removes the container at task exit.
conf=$prefix/etc/enroot/enroot.conf
mkdir -p "$(dirname "$conf")"
node='${SLURM_TOPOLOGY_ADDR:-${SLURMD_NODENAME:-local}}'
cat >"$conf.tmp" <<CONF
# Written by slurmrun's scripts/pyxis-setup.sh: two Slurm nodes on one host.
ENROOT_RUNTIME_PATH /run/enroot-test/$node/runtime
ENROOT_DATA_PATH /var/tmp/enroot-test/$node/data
ENROOT_CACHE_PATH /var/tmp/enroot-test/$node/cache
CONF
if ! cmp -s "$conf.tmp" "$conf"; then mv "$conf.tmp" "$conf"; else rm -f "$conf.tmp"; fi

if [ "$new_plugin" = 1 ] || ! srun --help 2>/dev/null | grep -q container-image; then
  echo "pyxis-setup: restarting the local Slurm to load pyxis"
  "$here/slurm-local.sh" stop
  "$here/slurm-local.sh" start
fi
srun --help | grep -q -- --container-image || { echo "pyxis-setup: pyxis is not loaded" >&2; exit 1; }
echo "pyxis-setup: enroot $("$prefix/bin/enroot" version), pyxis loaded"

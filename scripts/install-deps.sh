#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks use for real:
# Debian's python3 with pytest, venv (a real wheel is pip-installed into one),
# git, wget (upstream's installer downloads with it, side by side with
# slurmrun's), tini (the benchmark's reference init), unshare (PID-namespace tests),
# crun (OCI bundles), podman (the image), xmllint (the JUnit schema check)
# and chromium (the report page in a real browser), gcc (the race detector). Does nothing when all
# are present.
set -euo pipefail
need=()
/usr/bin/python3 -c 'import pytest' 2>/dev/null || need+=(python3-pytest)
dpkg -s python3-venv >/dev/null 2>&1 || need+=(python3-venv)
# Debian's pip: the side-by-side test's venvs use it instead of their own.
/usr/bin/python3 -c 'import pip' 2>/dev/null || need+=(python3-pip)
command -v git >/dev/null || need+=(git)
command -v wget >/dev/null || need+=(wget)
# The race detector needs cgo: a C compiler and libc's headers.
command -v gcc >/dev/null || need+=(gcc)
dpkg -s libc6-dev >/dev/null 2>&1 || need+=(libc6-dev)
command -v tini >/dev/null || need+=(tini)
command -v unshare >/dev/null || need+=(util-linux)
command -v crun >/dev/null || need+=(crun)
command -v podman >/dev/null || command -v buildah >/dev/null || need+=(podman)
command -v xmllint >/dev/null || need+=(libxml2-utils)
command -v chromium >/dev/null || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing packages: ${need[*]}; run as root: apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null

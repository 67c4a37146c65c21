#!/usr/bin/env bash
# enroot-import.sh IMAGE SQSH: the squashfs file pyxis runs, from the image
# in podman's store (or dockerd's, when only docker is installed).
# enroot 4.1.2 removes the container it creates for a podman:// import with
# `docker rm` (docker.sh, its EXIT trap, run after it removed its working
# directory): with no docker, or a docker with no daemon, that fails, the
# import exits 1 and the container stays in podman's store. A `docker` that
# is podman, run from /, for this command alone, fixes both.
set -euo pipefail
[ $# = 2 ] || { echo "usage: $0 IMAGE SQSH" >&2; exit 2; }
image=$1 sqsh=$2
command -v enroot >/dev/null || { echo "enroot-import: enroot is needed (make pyxis builds it from ../shared/vendor as root)" >&2; exit 1; }
rm -f "$sqsh"
if command -v podman >/dev/null; then
  shim=$(mktemp -d)
  trap 'rm -rf "$shim"' EXIT
  printf '#!/bin/sh\ncd / && exec podman "$@"\n' >"$shim/docker"
  chmod +x "$shim/docker"
  echo "enroot import -o $sqsh podman://$image"
  PATH="$shim:$PATH" enroot import -o "$sqsh" "podman://$image"
else
  echo "enroot import -o $sqsh dockerd://$image"
  enroot import -o "$sqsh" "dockerd://$image"
fi

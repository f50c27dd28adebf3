#!/usr/bin/env bash
# What the image checks need, installed where it is missing: podman, runc (this kind of machine
# refuses crun) and debootstrap (for the stand-in of the image's base), from Debian's packages.
# `make test` and .ci/run run it. On a machine without apt it only says what is missing: the image
# checks then fail saying why, or SKIP_IMAGE_TESTS=1 skips them.
set -euo pipefail

if [ "${SKIP_IMAGE_TESTS:-}" = "1" ]; then
  echo "SKIP_IMAGE_TESTS=1: the image checks are skipped, and what they need is not installed"
  exit 0
fi
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  command -v podman >/dev/null 2>&1 \
    || echo "podman is missing and this machine has no apt to install it: the image checks will fail (SKIP_IMAGE_TESTS=1 skips them)" >&2
  exit 0
fi
missing=()
for package in podman runc debootstrap; do
  dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q '^install ok installed$' \
    || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
      echo "the image checks need ${missing[*]}; install them as root (SKIP_IMAGE_TESTS=1 skips the checks)" >&2
      exit 0
    }
    as_root=(sudo)
  fi
  echo "installing ${missing[*]} for the image checks"
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
podman --version

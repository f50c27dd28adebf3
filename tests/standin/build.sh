#!/usr/bin/env bash
# Builds the stand-in for the Dockerfile's base image, python:3.11-slim-bookworm, which cannot be
# pulled where the tests run: Debian bookworm from the machine's own Debian mirror, slimmed as
# debian:bookworm-slim is, with Debian's Python 3.11 installed as the official image has its own.
#
# Where the stand-in differs from the real base (a check that passes here may still fail there):
#   - Python is Debian's 3.11.2 in /usr/bin, not 3.11.x built from source in /usr/local/bin;
#   - pip is Debian's 23.0.1 and installs into /usr/local/lib/python3.11/dist-packages, not
#     site-packages; the EXTERNALLY-MANAGED marker Debian adds is removed (the real base has none);
#   - apt reads this machine's Debian mirror (its sources are copied in, with the checks that a
#     dated mirror snapshot needs relaxed), not deb.debian.org;
#   - package versions are those of the mirror's snapshot, not those of the pinned base's build.
# Alike: Debian bookworm, glibc, dash as /bin/sh, bash, the same runtime packages (ca-certificates,
# netbase, tzdata), no documentation, man pages or locales, no stdlib bytecode, no test folders.
#
# Usage (as root): build.sh DEBIAN_TAG PYTHON_TAG. tests/podman.py runs it when the image named by
# the hash of this folder is missing, so a normal run reuses the base and builds only the project.
set -euo pipefail

debian_tag=$1
python_tag=$2
here=$(cd "$(dirname "$0")" && pwd)

# The first mirror of the machine's apt sources, in either format.
mirror=${STANDIN_MIRROR:-}
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror=$(awk '$1 == "URIs:" { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" && $2 !~ /^\[/ { print $2; exit }' /etc/apt/sources.list)
fi
if [ -z "$mirror" ]; then
  echo "build.sh: no Debian mirror in /etc/apt/sources.list*; set STANDIN_MIRROR" >&2
  exit 1
fi

root=$(mktemp -d /var/tmp/nfba-standin.XXXXXX)
trap 'rm -rf "$root"' EXIT

echo "stand-in: debootstrap --variant=minbase bookworm" >&2
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 \
  || { tail -n 20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"

# Slimmed as debian:bookworm-slim: what dpkg would no longer install, removed now as well.
cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
CFG
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/{groff,info,linda,lintian/overrides,locale,man}/*
cat >"$root/etc/apt/apt.conf.d/slim" <<'CFG'
Acquire::Languages "none";
Acquire::GzipIndexes "true";
APT::Install-Recommends "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
CFG

# The machine's sources, so that apt in the Dockerfile reaches the same mirror; a dated snapshot
# has Release files whose Valid-Until has passed.
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/debian.sources"
  : >"$root/etc/apt/sources.list"
fi
printf 'Acquire::Check-Valid-Until "false";\n' >"$root/etc/apt/apt.conf.d/snapshot"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/log/*.log

echo "stand-in: import $debian_tag" >&2
tar --numeric-owner -C "$root" -c . \
  | podman import --change 'CMD ["bash"]' - "$debian_tag" >/dev/null

echo "stand-in: build $python_tag" >&2
podman build --quiet --network=host --build-arg "DEBIAN=$debian_tag" \
  -t "$python_tag" -f "$here/Containerfile" "$here" >/dev/null

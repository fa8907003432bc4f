#!/usr/bin/env bash
# Installs every Debian 12 package Atlas needs to build and test, from a
# fresh machine. Idempotent: apt-get (and its index update) runs only when a
# package is missing. Prints one summary line; apt's output only on failure.
set -euo pipefail

packages=(
  meson ninja-build pkg-config g++                          # toolchain
  libcaf-dev libhiredis-dev libuv1-dev libyaml-cpp-dev      # libraries
  libsimdjson-dev libspdlog-dev libfmt-dev libhttp-parser-dev
  libcurl4-openssl-dev libarchive-dev libssl-dev
  libjemalloc-dev                                           # atlas-server's allocator
  catch2                                                    # unit tests
  redis-server redis-sentinel python3 curl procps           # tests and scripts (sentinel: Redis failover test)
  clang libclang-rt-14-dev                                  # fuzzing (libFuzzer)
  docker.io busybox-static                                  # docker runner tests (own dockerd, busybox image)
  wrk                                                       # bench/ drivers (run by the tests on tiny sizes)
  prometheus-cpp-dev prometheus                             # /metrics (prometheus-cpp core); metrics test: a real Prometheus
  chromium nodejs openssl                                   # dashboard browser test; auth test: OpenID provider (tests/oidc)
  python3-yaml python3-requests python3-promise            # original_client_test: the original `foundations`
  python3-redis python3-jsonschema                          #   client's imports (run from ATLAS_ORIGINAL_SOURCE)
  git                                                       #   and its source, fetched by scripts/test.sh
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# npm comes with some nodejs builds (NodeSource) and is its own Debian package
# otherwise: ask for it only when the command is missing.
if ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

# Root installs directly; anyone else needs sudo. `env` carries the variable
# through sudo, which would otherwise reset the environment.
as_root=(env DEBIAN_FRONTEND=noninteractive)
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: missing ${missing[*]}; run as root or install sudo" >&2
    exit 1
  fi
  as_root=(sudo "${as_root[@]}")
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
apt=(apt-get -o DPkg::Lock::Timeout=120 -y -q)
if ! "${as_root[@]}" "${apt[@]}" update >"$log" 2>&1 ||
   ! "${as_root[@]}" "${apt[@]}" install --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "install-deps: failed to install ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: installed ${#missing[@]} missing packages (${missing[*]})"

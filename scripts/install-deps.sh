#!/usr/bin/env bash
# Installs the Debian bookworm packages Drover builds, tests and benchmarks with.
# Idempotent: packages already present are skipped, and apt-get is not called at all
# when nothing is missing. Nothing else is downloaded, ever.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config clang clang-tidy libclang-rt-14-dev
  libsqlite3-dev zlib1g-dev libzstd-dev libsnappy-dev nlohmann-json3-dev libhowardhinnant-date-dev tzdata
  libcli11-dev libfmt-dev libboost-dev libssl-dev openssl ca-certificates grub-common
  libubootenv-tool lintian help2man chromium
  libgtest-dev libgmock-dev libbenchmark-dev librapidcheck-dev
  prometheus victoria-metrics
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(hyperfine time python3 wrk nginx-light curl)
fi
# --arm64: cross-building the agent for 64-bit ARM (make agent-arm64) and running it under
# qemu-user: the cross compiler and the agent's libraries for arm64, installed beside the
# host's (multiarch; the architecture is added to dpkg's list first).
if [[ "${1:-}" == "--arm64" ]]; then
  packages+=(crossbuild-essential-arm64 qemu-user libssl-dev:arm64 libzstd-dev:arm64
             zlib1g-dev:arm64 libboost-dev:arm64 libhowardhinnant-date-dev:arm64)
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    if [[ $(id -u) -ne 0 ]]; then sudo dpkg --add-architecture arm64; else dpkg --add-architecture arm64; fi
  fi
fi

# The web console's npm packages (web/package-lock.json, npm ci), when Node.js is here: its
# build and browser tests need them (docs/console.md). Without npm, drover is built without
# the console and says so.
web=$(dirname "$0")/../web
if command -v npm > /dev/null; then
  if [[ ! -f $web/node_modules/.package-lock.json ||
        $web/package-lock.json -nt $web/node_modules/.package-lock.json ]]; then
    echo "install-deps: npm ci in web/"
    (cd "$web" && npm ci --no-audit --no-fund --loglevel=error)
  fi
else
  echo "install-deps: npm not found: drover will be built without its web console" >&2
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

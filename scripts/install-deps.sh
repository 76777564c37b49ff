#!/usr/bin/env bash
# Installs the Debian bookworm packages Drover builds, tests and benchmarks with.
# Idempotent: packages already present are skipped, and apt-get is not called at all
# when nothing is missing. Nothing else is downloaded, ever.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config clang clang-tidy libclang-rt-14-dev
  libsqlite3-dev zlib1g-dev libzstd-dev libsnappy-dev nlohmann-json3-dev libhowardhinnant-date-dev tzdata
  libcli11-dev libfmt-dev libboost-dev libssl-dev openssl ca-certificates grub-common
  libubootenv-tool lintian help2man
  libgtest-dev libgmock-dev libbenchmark-dev librapidcheck-dev
  prometheus victoria-metrics
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(hyperfine time python3 wrk nginx-light curl)
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

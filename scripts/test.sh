#!/usr/bin/env bash
# Configures, builds and runs every test through ctest.
#   scripts/test.sh            the release preset
#   scripts/test.sh asan       the same suite under AddressSanitizer + UndefinedBehaviorSanitizer
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-release}
cmake --preset "$preset"
cmake --build --preset "$preset"
ctest --preset "$preset"

#!/usr/bin/env bash
# Builds the libFuzzer targets (preset "fuzz": clang, ASan + UBSan) and runs each for a bounded time, starting
# from the seeds in fuzz/corpus (copied, so the repository is left as it was).
#   scripts/fuzz.sh [seconds per target, default 60]
# A crash stops the run, leaves the input under build/fuzz/artifacts/ and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

mkdir -p build/fuzz/artifacts
for target in tokenizer_model tokenizer_json encode safetensors torch_checkpoint model_config gguf; do
  work=$(mktemp -d)
  cp -r "fuzz/corpus/$target/." "$work/"
  echo "fuzz: $target for ${seconds}s"
  build/fuzz/fuzz/fuzz_$target "$work" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 \
    -artifact_prefix=build/fuzz/artifacts/$target- -print_final_stats=1 2>&1 | tail -n 12
  status=${PIPESTATUS[0]}
  rm -rf "$work"
  if [ "$status" -ne 0 ]; then
    echo "fuzz: $target FAILED (exit $status); see build/fuzz/artifacts/" >&2
    exit 1
  fi
done
echo "fuzz: all targets ran ${seconds}s without a failure"

#!/usr/bin/env bash
# Builds the libFuzzer targets (preset "fuzz": clang, ASan + UBSan) and, for each target:
#   1. replays its regression inputs (every hostile input of tests/support/hostile_files.hpp, written by
#      fuzz_regressions; the pickle bombs among them are a few MB) and the seeds of fuzz/corpus/<target>: each must
#      run clean;
#   2. fuzzes for a bounded time with its dictionary (fuzz/dict/<target>.dict), starting from the corpus grown by
#      earlier runs (build/fuzz/corpus/<target>, kept between runs), the seeds and the regression inputs.
# Memory past -rss_limit_mb, one allocation past -malloc_limit_mb and an input slower than -timeout are failures,
# so blow-ups and hangs are found like crashes.
#   scripts/fuzz.sh [seconds per target, default 60] [target ...]
# A failure leaves the input under build/fuzz/artifacts/ and the whole log under build/fuzz/logs/, prints the
# report, and the script exits non-zero after trying every target.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(tokenizer_model tokenizer_json encode decode safetensors torch_checkpoint
                                     model_config gguf dialog)

cmake --preset fuzz >/dev/null || exit 1
cmake --build --preset fuzz || exit 1

limits=(-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=20)
mkdir -p build/fuzz/artifacts build/fuzz/logs build/fuzz/corpus
rm -rf build/fuzz/regressions
build/fuzz/fuzz/fuzz_regressions build/fuzz/regressions || exit 1

# The lines of a libFuzzer log that say what went wrong, and its end.
report() {
  grep -E "ERROR|SUMMARY|==[0-9]+==|#[0-9]+ 0x|Test unit written|Running:|out-of-memory|timeout" "$1" | tail -n 40 >&2
  tail -n 4 "$1" >&2
}

failed=()
for target in "${targets[@]}"; do
  bin=build/fuzz/fuzz/fuzz_$target
  log=build/fuzz/logs/$target.log
  regressions=build/fuzz/regressions/$target
  corpus=build/fuzz/corpus/$target
  mkdir -p "$corpus"
  dict=()
  [ -f "fuzz/dict/$target.dict" ] && dict=(-dict="fuzz/dict/$target.dict")

  inputs=("fuzz/corpus/$target"/*)
  [ -d "$regressions" ] && inputs+=("$regressions"/*)
  [ -d "$regressions-large" ] && inputs+=("$regressions-large"/*)
  echo "fuzz: $target: replaying ${#inputs[@]} seeds and regression inputs"
  if ! "$bin" "${limits[@]}" -artifact_prefix="build/fuzz/artifacts/$target-" "${inputs[@]}" >"$log" 2>&1; then
    echo "fuzz: $target FAILED on a regression input or seed; the report:" >&2
    report "$log"
    failed+=("$target")
    continue
  fi

  echo "fuzz: $target for ${seconds}s"
  start_dirs=("fuzz/corpus/$target")
  [ -d "$regressions" ] && start_dirs+=("$regressions")
  if "$bin" "$corpus" "${start_dirs[@]}" "${dict[@]}" "${limits[@]}" -max_len=262144 -max_total_time="$seconds" \
      -artifact_prefix="build/fuzz/artifacts/$target-" -print_final_stats=1 >"$log" 2>&1; then
    grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)" "$log" | tail -n 3
  else
    echo "fuzz: $target FAILED; the report (whole log: $log; input under build/fuzz/artifacts/):" >&2
    report "$log"
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds}s without a failure, after their regression inputs"

// Writes the regression inputs of the fuzz targets: every hostile input of tests/support/hostile_files.hpp (the
// cases issue 17 found, with the boundary values around each), into DIR/<target>/, for scripts/fuzz.sh to replay
// and to start the fuzzing from; those of a MiB or more (the pickle bombs) into DIR/<target>-large/, replayed only.
//   fuzz_regressions DIR
#include <cstdio>
#include <filesystem>
#include <string>

#include "support/hostile_files.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_regressions DIR\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  int n = 0;
  for (const auto& in : llama3::test::hostile_inputs()) {
    // The unpickler is fuzzed (on the raw bytes) by the torch checkpoint target.
    const std::string target = in.target == "pth" || in.target == "pickle" ? "torch_checkpoint" : in.target;
    llama3::test::write_file(dir / (target + (in.bytes.size() >= (1u << 20) ? "-large" : "")) / in.name, in.bytes);
    ++n;
  }
  std::printf("fuzz_regressions: %d inputs in %s\n", n, dir.c_str());
  return 0;
}

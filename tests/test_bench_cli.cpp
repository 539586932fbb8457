// llama3-bench --compare-llamacpp end to end, against a stand-in for llama.cpp's llama-bench: a shell script that
// logs its arguments and prints llama-bench's JSON, with other figures each call. What the user relies on: llama-bench
// gets the same test (file, threads, prompt, generation), once after each of our repetitions, and the table's
// llama.cpp figures are the medians of its runs, the ratios ours over them.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <simdjson.h>
#include <sys/stat.h>

#include "support/checkpoint_writer.hpp"
#include "support/gguf_model.hpp"
#include "support/model_fixtures.hpp"
#include "support/run_command.hpp"

using namespace llama3;

namespace {

test::CommandResult run(const std::string& args, const char* redirect) {
  return test::run_command(std::string(LLAMA3_BENCH_TOOL) + " " + args + " " + redirect);
}

std::filesystem::path script(const std::filesystem::path& path, const std::string& body) {
  std::ofstream(path) << "#!/bin/sh\n" << body;
  ::chmod(path.c_str(), 0755);
  return path;
}

}  // namespace

TEST_CASE("llama3-bench runs llama-bench after each repetition and reports its medians and the ratios", "[cli][bench]") {
  const std::filesystem::path dir = test::temp_dir("bench-cli");
  const test::ModelFixture f = test::load_model_fixture("tiny-gqa");
  Checkpoint meta = load_checkpoint(f.dir / "meta", {.max_seq_len = f.max_seq_len});
  const auto model = dir / "tiny.gguf";
  std::ofstream(model, std::ios::binary) << test::gguf_model(meta, false);

  // Call n prints prefill 100 * (1, 3, 2)[n] and decode a tenth of it: medians 200 and 20.
  const auto log = dir / "calls.log";
  const auto fake = script(dir / "llama-bench", "echo \"$*\" >> '" + log.string() + "'\n"
      "case $(wc -l < '" + log.string() + "') in 1) pp=100;; 2) pp=300;; *) pp=200;; esac\n"
      "printf '[{\"n_prompt\": 4, \"n_gen\": 0, \"samples_ts\": [%d]}, "
      "{\"n_prompt\": 0, \"n_gen\": 2, \"samples_ts\": [%d]}]\\n' $pp $((pp / 10))\n");
  const test::CommandResult r = run("--model " + model.string() + " --threads 1 --reps 3 --prompt 4 --gen 2 " +
                                    "--compare-llamacpp " + fake.string() + " --json", "2>/dev/null");
  REQUIRE(r.status == 0);

  std::ifstream in(log);
  std::vector<std::string> calls;
  for (std::string line; std::getline(in, line);) calls.push_back(line);
  REQUIRE(calls.size() == 3);
  for (const std::string& call : calls) {
    INFO(call);
    CHECK(call.find("-m " + model.string() + " ") != std::string::npos);
    CHECK(call.find(" -p 4 -n 2 -t 1 -r 1 ") != std::string::npos);
    CHECK(call.find("-o json") != std::string::npos);
  }

  simdjson::dom::parser parser;
  const simdjson::dom::element doc = parser.parse(r.out);
  const simdjson::dom::array results = doc["results"].get_array();
  REQUIRE(results.size() == 1);
  const simdjson::dom::element ours = results.at(0);
  const simdjson::dom::element theirs = ours["llamacpp"];
  CHECK(double(theirs["prefill_tps"]) == 200.0);
  CHECK(double(theirs["decode_tps"]) == 20.0);
  CHECK(double(theirs["prefill_ratio"]) == Approx(double(ours["prefill_tps"]) / 200.0).epsilon(1e-5));
  CHECK(double(theirs["decode_ratio"]) == Approx(double(ours["decode_tps"]) / 20.0).epsilon(1e-5));
  // Their decoding against the floor measured in our run: the same bandwidth for both.
  CHECK(double(theirs["decode_of_floor"]) == Approx(20.0 / double(ours["floor_tps"])).epsilon(1e-5));
  CHECK(double(ours["floor_tps"]) == Approx(double(ours["bandwidth_gbs"]) / double(doc["weight_gb_per_token"])).epsilon(1e-3));
  // The peak RSS is the model's and its runs', not the bandwidth probe's 1 GiB buffer (this model is a few MB).
  CHECK(double(doc["peak_rss_gb"]) > 0);
  CHECK(double(doc["peak_rss_gb"]) < 0.8);

  // A llama-bench that fails: an error that says how to run it by hand, not a table with holes.
  const auto broken = script(dir / "broken-bench", "exit 3\n");
  const test::CommandResult b = run("--model " + model.string() + " --threads 1 --reps 1 --prompt 4 --gen 2 " +
                                    "--compare-llamacpp " + broken.string(), "2>&1");
  CHECK(b.status == 1);
  CHECK(b.out.find("exit status 3") != std::string::npos);
  CHECK(b.out.find("run it by hand") != std::string::npos);
  std::filesystem::remove_all(dir);
}

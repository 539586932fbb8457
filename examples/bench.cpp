// llama3-bench: prefill and decode speed of a model on this machine, against the memory-bandwidth floor measured in
// the same run, and optionally against llama.cpp's llama-bench on the same GGUF file.
//
//   llama3-bench --model model.gguf [--threads 1,2] [--prompt 128] [--gen 64] [--reps 3] [--json]
//   llama3-bench --synthetic 1b --dtype q8_0
//   llama3-bench --model model.gguf --compare-llamacpp ~/llama.cpp/build/bin/llama-bench
//
// Prefill: one forward pass over --prompt tokens. Decode: --gen tokens one at a time after --depth tokens of context
// (0, as llama-bench's tg test). The floor is the weight bytes one decode step reads over the read bandwidth,
// measured right before each repetition's decoding (medians of both).
// --lookup N also decodes a prompt that quotes itself with prompt lookup and without, and reports both.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <simdjson.h>

#include "llama3/backends/cpu/matmul.hpp"
#include "llama3/core/json.hpp"
#include "llama3/generation/lookup.hpp"
#include "llama3/io/checkpoint.hpp"
#include "llama3/model/pack.hpp"
#include "llama3/model/quantize.hpp"
#include "llama3/model/synthetic.hpp"
#include "llama3/model/transformer.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

using Clock = std::chrono::steady_clock;
using llama3::TokenId;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// Peak resident memory (GB) of the model and its runs, without the bandwidth probe's 1 GiB buffer: Linux's VmHWM,
// reset after each probe has freed its buffer (/proc/self/clear_refs), the peaks between probes kept. Elsewhere the
// process's peak, probe included.
class PeakRss {
public:
  void before_probe() { peak_ = std::max(peak_, high_water_mark()); }
  void after_probe() { std::ofstream("/proc/self/clear_refs") << "5"; }
  double gb() const { return std::max(peak_, high_water_mark()); }

private:
  static double high_water_mark() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) * 1024 / 1e9;  // kB
    }
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) * 1024 / 1e9;  // KiB on Linux
  }
  double peak_ = 0;
};

// ---- read bandwidth ---------------------------------------------------------------------------------------------

#if defined(__x86_64__)
template <bool Prefetch>
LLAMA3_TARGET_AVX2 float sum_avx2(const float* p, std::size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (std::size_t i = 0; i + 32 <= n; i += 32) {
    if constexpr (Prefetch) {
      _mm_prefetch(reinterpret_cast<const char*>(p + i) + 1024, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p + i) + 1088, _MM_HINT_T0);
    }
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  return llama3::cpu::hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}
#endif

float sum_portable(const float* p, std::size_t n) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (std::size_t i = 0; i + 4 <= n; i += 4) {
    s0 += p[i];
    s1 += p[i + 1];
    s2 += p[i + 2];
    s3 += p[i + 3];
  }
  return s0 + s1 + s2 + s3;
}

// GB/s: `threads` threads each sum their share of a 1 GiB buffer (far beyond the caches), with and without the
// software prefetch the decode kernels use; the best of `passes` (as STREAM reports its best time).
double read_bandwidth(unsigned threads, int passes) {
  const std::size_t n = (std::size_t{1} << 30) / sizeof(float);
  llama3::Tensor<float> buf({static_cast<std::int64_t>(n)});
  llama3::ThreadPool pool(threads);
  pool.run(threads, [&](std::size_t t) {  // first touch by the threads that read it
    std::fill(buf.data() + n / threads * t, buf.data() + n / threads * (t + 1), 1.0f);
  });
  double best = 0;
  volatile float sink = 0;
  for (int rep = 0; rep < passes; ++rep) {
    const auto t0 = Clock::now();
    std::vector<float> partial(threads);
    pool.run(threads, [&](std::size_t t) {
      const float* p = buf.data() + n / threads * t;
#if defined(__x86_64__)
      if (llama3::cpu::has_avx2()) {
        partial[t] = rep % 2 ? sum_avx2<true>(p, n / threads) : sum_avx2<false>(p, n / threads);
        return;
      }
#endif
      partial[t] = sum_portable(p, n / threads);
    });
    const double s = seconds_since(t0);
    for (float x : partial) sink = sink + x;
    best = std::max(best, static_cast<double>(n * sizeof(float)) / s / 1e9);
  }
  return best;
}

// ---- llama.cpp's llama-bench ------------------------------------------------------------------------------------

struct LlamaCppResult {
  double prefill = NAN, decode = NAN;
};

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs llama-bench with the same shape of test and reads its JSON: the median of its samples, as ours.
LlamaCppResult run_llama_bench(const std::string& bench, const std::string& gguf, int prompt, int gen, int reps,
                               unsigned threads, bool mmap) {
  const std::string cmd = shell_quote(bench) + " -m " + shell_quote(gguf) + " -p " + std::to_string(prompt) +
                          " -n " + std::to_string(gen) + " -t " + std::to_string(threads) + " -r " +
                          std::to_string(reps) + (mmap ? "" : " -mmp 0") + " -o json 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw llama3::Error("cannot run " + bench);
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = pclose(p);
  if (status != 0) {
    throw llama3::Error(bench + " failed (exit status " + std::to_string(WEXITSTATUS(status)) + "); run it by hand: " +
                        cmd);
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(out).get(root) || !root.is_array()) {
    throw llama3::Error(bench + " did not print a JSON array with -o json; is it llama.cpp's llama-bench?");
  }
  LlamaCppResult r;
  for (simdjson::dom::element test : root.get_array()) {
    std::int64_t n_prompt = 0, n_gen = 0;
    if (test["n_prompt"].get(n_prompt) || test["n_gen"].get(n_gen)) continue;
    std::vector<double> samples;
    simdjson::dom::array ts;
    if (!test["samples_ts"].get(ts)) {
      for (simdjson::dom::element x : ts) samples.push_back(x.get_double());
    } else {
      double avg = 0;
      if (!test["avg_ts"].get(avg)) samples.push_back(avg);
    }
    (n_gen == 0 ? r.prefill : r.decode) = median(samples);
  }
  return r;
}

// ---- our runs ---------------------------------------------------------------------------------------------------

struct Result {
  unsigned threads = 0;
  double bandwidth = 0, prefill = 0, decode = 0, floor = 0;
  double lookup_plain = NAN, lookup_decode = NAN;  // tok/s decoding a self-quoting prompt without / with lookup
  llama3::LookupStats lookup;
  LlamaCppResult llamacpp;
};

// The text the lookup prompt quotes: 48 distinct tokens.
std::vector<TokenId> quoted_text(int vocab) {
  std::vector<TokenId> text;
  for (int i = 0; i < 48; ++i) text.push_back(static_cast<TokenId>((i * 104729 + 7) % vocab));
  return text;
}

TokenId argmax(const float* row, int n) { return static_cast<TokenId>(std::max_element(row, row + n) - row); }

// Decodes `gen` tokens greedily after `prompt` with up to `lookup` drafts a pass; tokens/s of the decoding alone.
double decode_with_lookup(llama3::Transformer<>& model, const std::vector<TokenId>& prompt, int gen, int lookup,
                          llama3::LookupStats* stats) {
  const int vocab = model.params().vocab_size;
  const llama3::Tensor<float> first = model.forward(prompt, 0, llama3::Logits::last);
  llama3::SamplingParams greedy;
  greedy.temperature = 0;
  llama3::SamplerChain chain = llama3::SamplerChain::from(greedy);
  std::vector<TokenId> tokens = prompt;
  const auto t = Clock::now();
  llama3::decode_sequence(
      tokens, first.data(), vocab, prompt.size() + static_cast<std::size_t>(gen), lookup, chain,
      [&](std::span<const TokenId> batch, int start) { return model.forward(batch, start, llama3::Logits::all); },
      [](TokenId, const float*) { return true; }, stats);
  return (gen - 1) / seconds_since(t);  // the first token came from the prefill
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_path, synthetic, dtype = "bf16", quantize, threads_list, compare, json_path;
  int prompt = 128, gen = 64, reps = 3, depth = 0, lookup = 0;
  bool json = false;
  CLI::App app{"Prefill and decode speed of a Llama 3 model on this machine, against the memory-bandwidth floor "
               "measured in the same run (and llama.cpp's llama-bench on the same GGUF, with --compare-llamacpp).",
               "llama3-bench"};
  app.add_option("--model", model_path, "a Meta or Hugging Face checkpoint folder, or a .gguf file");
  app.add_option("--synthetic", synthetic, "a random model of Llama 3.2 1B, 3.2 3B or 3.1 8B's shape, built in memory")
      ->check(CLI::IsMember({"1b", "3b", "8b"}));
  app.add_option("--dtype", dtype, "weights of the synthetic model")
      ->check(CLI::IsMember({"bf16", "f16", "f32", "q8_0", "q4_0"}))->capture_default_str();
  app.add_option("--quantize", quantize, "quantize the loaded model's weights: q8_0 or q4_0")
      ->check(CLI::IsMember({"q8_0", "q4_0"}));
  std::string kv_cache = "f32";
  app.add_option("--kv-cache", kv_cache, "the KV cache's type: f32 or bf16")->capture_default_str()
      ->check(CLI::IsMember({"f32", "bf16"}));
  std::string isa_cap, precision = "f32";
  app.add_option("--isa", isa_cap, "cap the SIMD kernels: portable, avx2, avx512 or avx512_bf16 (default: the best "
                 "this CPU has)")->check(CLI::IsMember({"portable", "avx2", "avx512", "avx512_bf16"}));
  app.add_option("--matmul-precision", precision, "products with bf16 weights: f32 maths, or bf16 inputs (vdpbf16ps, "
                 "as llama.cpp)")->capture_default_str()->check(CLI::IsMember({"f32", "bf16"}));
  bool quote = false;
  app.add_flag("--quote", quote, "with --synthetic and --lookup: rewire the random model to quote the lookup prompt's text "
                                 "(make_quoting), so that prompt lookup meets a model that quotes (every draft right)");
  bool no_pack = false;
  app.add_flag("--no-pack", no_pack, "keep Q4_0 weights in the file's layout (by default they are regrouped for the AVX-512 "
                                     "kernels: LoadOptions::pack)");
  bool no_mmap = false;
  app.add_flag("--no-mmap", no_mmap, "read the weights into memory instead of mapping the file; with --compare-llamacpp, "
               "llama-bench gets -mmp 0 too");
  app.add_option("--threads", threads_list, "thread counts to run, comma-separated (default: 1 and all)");
  app.add_option("--prompt", prompt, "prompt tokens to prefill")->capture_default_str()->check(CLI::Range(1, 1 << 17));
  app.add_option("--gen", gen, "tokens to decode")->capture_default_str()->check(CLI::Range(2, 1 << 17));
  app.add_option("--depth", depth, "tokens of context before the decoded ones (llama-bench's tg test: 0)")
      ->capture_default_str()->check(CLI::Range(0, 1 << 17));
  app.add_option("--reps", reps, "repetitions (medians are reported)")->capture_default_str()->check(CLI::Range(1, 100));
  app.add_option("--lookup", lookup, "also decode a self-quoting prompt with prompt lookup (N drafts) and without")
      ->capture_default_str()->check(CLI::Range(0, llama3::lookup_max_draft));
  app.add_option("--compare-llamacpp", compare, "llama.cpp's llama-bench: run it on the same GGUF (once after each of our "
                 "repetitions), print the ratios");
  app.add_flag("--json", json, "print the results as JSON on stdout (progress still goes to stderr)");
  app.add_option("--json-file", json_path, "also write the JSON to this file");
  CLI11_PARSE(app, argc, argv);

  try {
    if (!isa_cap.empty()) {
      llama3::cpu::Isa cap{};
      llama3::cpu::parse_isa(isa_cap, cap);
      llama3::cpu::set_max_isa(cap);
    }
    if (model_path.empty() == synthetic.empty()) {
      throw llama3::Error("give a model with --model PATH (folder or .gguf), or --synthetic 1b|3b|8b");
    }
    if (quote && (synthetic.empty() || lookup == 0)) {
      throw llama3::Error("--quote rewires a random model for prompt lookup: give --synthetic 1b|3b|8b and --lookup N");
    }
    // Opened now, so that a path that cannot be written fails before the run, not after it.
    std::unique_ptr<FILE, int (*)(FILE*)> json_file(nullptr, std::fclose);
    if (!json_path.empty()) {
      json_file.reset(std::fopen(json_path.c_str(), "w"));
      if (!json_file) {
        throw llama3::Error(json_path + ": cannot write (" + std::strerror(errno) + "); --json-file needs a file in an "
                            "existing folder");
      }
    }
    const bool gguf = !model_path.empty() && std::filesystem::path(model_path).extension() == ".gguf";
    if (!compare.empty() && !gguf) {
      throw llama3::Error("--compare-llamacpp runs llama-bench on the same weights: give them as --model FILE.gguf");
    }
    if (!compare.empty() && !quantize.empty()) {
      throw llama3::Error("--compare-llamacpp with --quantize would compare different weights: quantize the GGUF "
                          "with llama-quantize instead");
    }
    if (!compare.empty() && depth != 0) {
      throw llama3::Error("--compare-llamacpp compares llama-bench's tests, which decode from an empty context: "
                          "leave --depth at 0");
    }
    const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    std::vector<unsigned> thread_counts;
    if (threads_list.empty()) {
      thread_counts = {1u};
      if (hw > 1) thread_counts.push_back(hw);
    } else {
      std::stringstream s(threads_list);
      for (std::string t; std::getline(s, t, ',');) {
        unsigned n = 0;
        const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
        if (ec != std::errc() || end != t.data() + t.size() || n < 1 || n > llama3::max_threads) {
          throw llama3::Error(llama3::detail::cat("--threads ", threads_list, ": expected counts from 1 to ",
                                                  llama3::max_threads, " separated by commas, like 1,2"));
        }
        thread_counts.push_back(n);
      }
    }

    // The model.
    const int self_quote = lookup > 0 ? 3 * 48 + 8 : 0;  // the lookup prompt below
    const int max_seq_len = std::max({prompt, depth + gen, self_quote + gen}) + 8;
    const auto t0 = Clock::now();
    llama3::Checkpoint c;
    std::string shape;
    if (!synthetic.empty()) {
      std::fprintf(stderr, "llama3-bench: building a random %s-shaped model (%s)...\n", synthetic.c_str(), dtype.c_str());
      const llama3::ModelParams p = synthetic == "1b"   ? llama3::params_of<llama3::presets::Llama3_2_1B>(max_seq_len)
                                    : synthetic == "3b" ? llama3::params_of<llama3::presets::Llama3_2_3B>(max_seq_len)
                                                        : llama3::params_of<llama3::presets::Llama3_1_8B>(max_seq_len);
      c = dtype == "f16"   ? llama3::synthetic_checkpoint<llama3::f16>(p)
          : dtype == "f32" ? llama3::synthetic_checkpoint<float>(p)
                           : llama3::synthetic_checkpoint<llama3::bf16>(p);
      if (quote) {
        const std::vector<TokenId> text = quoted_text(p.vocab_size);
        if (dtype == "f16") {
          llama3::make_quoting<llama3::f16>(c, text);
        } else if (dtype == "f32") {
          llama3::make_quoting<float>(c, text);
        } else {
          llama3::make_quoting<llama3::bf16>(c, text);
        }
      }
      if (dtype == "q8_0" || dtype == "q4_0") {  // from the bf16 weights, as llama-quantize would
        llama3::quantize_weights(c.weights, c.params, llama3::parse_quantization(dtype));
      }
      if (!no_pack) llama3::pack_weights(c.weights, c.params);
      c.params.kv_cache = kv_cache == "bf16" ? llama3::DType::bf16 : llama3::DType::f32;
      shape = "random " + synthetic;
    } else {
      llama3::LoadOptions options;
      options.max_seq_len = max_seq_len;
      if (!quantize.empty()) options.quantize = llama3::parse_quantization(quantize);
      options.kv_cache = kv_cache == "bf16" ? llama3::DType::bf16 : llama3::DType::f32;
      options.mmap = !no_mmap;
      options.pack = !no_pack;
      const bool tty = isatty(STDERR_FILENO) != 0;
      options.progress = [tty](const llama3::LoadProgress& p) {
        if (tty || p.done == p.total) {  // a log file gets each stage once
          std::fprintf(stderr, "%sllama3-bench: %.*s %zu/%zu   %s", tty ? "\r" : "", static_cast<int>(p.stage.size()),
                       p.stage.data(), p.done, p.total, tty ? "" : "\n");
        }
      };
      c = llama3::load_checkpoint(model_path, options);
      std::fprintf(stderr, "\n");
      shape = model_path;
    }
    const llama3::ModelParams params = c.params;
    const std::string weights = std::string(llama3::dtype_name(llama3::dtype(c.weights.layers[0].w1)));
    const double weight_gb = static_cast<double>(llama3::weight_bytes_per_token(c.weights)) / 1e9;
    llama3::Transformer<> model(std::move(c), 1);
    model.set_matmul_precision(precision == "bf16" ? llama3::MatmulPrecision::bf16 : llama3::MatmulPrecision::f32);
    std::fprintf(stderr, "llama3-bench: ready in %.1f s: dim %d, %d layers, %d/%d heads, FeedForward %d, vocab %d, "
                 "%s weights, %.3f GB read per decoded token; kernels: %s\n", seconds_since(t0), params.dim,
                 params.n_layers, params.n_heads, params.n_kv_heads, params.ffn_hidden_dim(), params.vocab_size,
                 weights.c_str(), weight_gb, std::string(llama3::cpu::isa_name(llama3::cpu::isa())).c_str());

    std::vector<TokenId> tokens(static_cast<std::size_t>(std::max(prompt, depth)));
    for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<TokenId>((i * 7919 + 13) % params.vocab_size);
    // A prompt that quotes itself: 48 tokens, twice, then a third time begun (what prompt lookup is for).
    const std::vector<TokenId> text = quoted_text(params.vocab_size);
    std::vector<TokenId> quoting = text;
    quoting.insert(quoting.end(), text.begin(), text.end());
    quoting.insert(quoting.end(), text.begin(), text.begin() + 8);

    // Warm up: the first pass faults a mapped file's pages in (llama-bench warms up too).
    std::fprintf(stderr, "llama3-bench: warming up...\n");
    model.set_threads(thread_counts.back());
    model.forward(std::span(tokens).first(std::min<std::size_t>(tokens.size(), 16)), 0, llama3::Logits::last);

    std::vector<Result> results;
    PeakRss peak_rss;
    for (const unsigned threads : thread_counts) {
      Result r;
      r.threads = threads;
      model.set_threads(threads);
      // The bandwidth beside each repetition's decoding, not once before them all: a shared host's bandwidth moves
      // by a third over minutes, and the fraction of the floor should compare the decoding with the same moment.
      std::vector<double> prefill, decode, bandwidth, their_prefill, their_decode;
      for (int rep = 0; rep < reps; ++rep) {
        std::fprintf(stderr, "\rllama3-bench: %u thread%s: run %d/%d...            ", threads, threads == 1 ? "" : "s",
                     rep + 1, reps);
        auto t = Clock::now();
        model.forward(std::span(tokens).first(static_cast<std::size_t>(prompt)), 0, llama3::Logits::last);
        prefill.push_back(prompt / seconds_since(t));
        if (depth > 0) model.forward(std::span(tokens).first(static_cast<std::size_t>(depth)), 0, llama3::Logits::last);
        peak_rss.before_probe();
        bandwidth.push_back(read_bandwidth(threads, 8));
        peak_rss.after_probe();
        std::fprintf(stderr, "\rllama3-bench: %u thread%s: run %d/%d, %.1f GB/s...   ", threads,
                     threads == 1 ? "" : "s", rep + 1, reps, bandwidth.back());
        TokenId next = 128000 % params.vocab_size;
        t = Clock::now();
        for (int i = 0; i < gen; ++i) {
          const llama3::Tensor<float> logits = model.forward(std::span(&next, 1), depth + i, llama3::Logits::last);
          next = argmax(logits.data(), params.vocab_size);
        }
        decode.push_back(gen / seconds_since(t));
        if (!compare.empty()) {
          // llama-bench once after each of our runs, not all its runs after all of ours: this machine's bandwidth
          // drifts over minutes, and the ratios should compare runs made side by side.
          std::fprintf(stderr, "\rllama3-bench: %u thread%s: run %d/%d, llama-bench...       ", threads,
                       threads == 1 ? "" : "s", rep + 1, reps);
          const LlamaCppResult theirs = run_llama_bench(compare, model_path, prompt, gen, 1, threads, !no_mmap);
          if (!std::isnan(theirs.prefill)) their_prefill.push_back(theirs.prefill);
          if (!std::isnan(theirs.decode)) their_decode.push_back(theirs.decode);
        }
      }
      r.prefill = median(prefill);
      r.decode = median(decode);
      r.bandwidth = median(bandwidth);
      r.floor = r.bandwidth / weight_gb;
      if (!compare.empty()) r.llamacpp = {median(their_prefill), median(their_decode)};
      if (lookup > 0) {
        std::vector<double> plain, with;
        for (int rep = 0; rep < reps; ++rep) {
          plain.push_back(decode_with_lookup(model, quoting, gen, 0, nullptr));
          r.lookup = {};
          with.push_back(decode_with_lookup(model, quoting, gen, lookup, &r.lookup));
        }
        r.lookup_plain = median(plain);
        r.lookup_decode = median(with);
      }
      std::fprintf(stderr, "\rllama3-bench: %u thread%s: done                            \n", threads,
                   threads == 1 ? "" : "s");
      results.push_back(r);
    }

    // Report.
    std::string j = "{\"model\": ";
    llama3::json::append_string(j, shape);
    j += ", \"weights\": ";
    llama3::json::append_string(j, weights);
    j += ", \"kv_cache\": ";
    llama3::json::append_string(j, kv_cache);
    j += ", \"isa\": ";
    llama3::json::append_string(j, llama3::cpu::isa_name(llama3::cpu::isa()));
    j += ", \"matmul_precision\": ";
    llama3::json::append_string(j, precision);
    j += std::string(", \"mmap\": ") + (no_mmap || model_path.empty() ? "false" : "true");
    char buf[512];
    std::snprintf(buf, sizeof buf, ", \"weight_gb_per_token\": %.9g, \"prompt\": %d, \"gen\": %d, \"depth\": %d, "
                  "\"reps\": %d, \"peak_rss_gb\": %.3f, \"results\": [", weight_gb, prompt, gen, depth, reps, peak_rss.gb());
    j += buf;
    const auto num = [](double x) {  // 9 significant digits: a tiny model's figures are far below 1e-6
      if (std::isnan(x)) return std::string("null");
      char v[32];
      std::snprintf(v, sizeof v, "%.9g", x);
      return std::string(v);
    };
    for (std::size_t i = 0; i < results.size(); ++i) {
      const Result& r = results[i];
      j += i ? ", " : "";
      j += "{\"threads\": " + std::to_string(r.threads) + ", \"bandwidth_gbs\": " + num(r.bandwidth) +
           ", \"prefill_tps\": " + num(r.prefill) + ", \"decode_tps\": " + num(r.decode) + ", \"floor_tps\": " +
           num(r.floor) + ", \"decode_of_floor\": " + num(r.decode / r.floor);
      if (lookup > 0) {
        j += ", \"lookup\": {\"drafts\": " + std::to_string(lookup) + ", \"plain_tps\": " + num(r.lookup_plain) +
             ", \"lookup_tps\": " + num(r.lookup_decode) + ", \"speedup\": " + num(r.lookup_decode / r.lookup_plain) +
             ", \"passes\": " + std::to_string(r.lookup.passes) + ", \"drafted\": " + std::to_string(r.lookup.drafted) +
             ", \"accepted\": " + std::to_string(r.lookup.accepted) + "}";
      }
      if (!compare.empty()) {
        j += ", \"llamacpp\": {\"prefill_tps\": " + num(r.llamacpp.prefill) + ", \"decode_tps\": " +
             num(r.llamacpp.decode) + ", \"prefill_ratio\": " + num(r.prefill / r.llamacpp.prefill) +
             ", \"decode_ratio\": " + num(r.decode / r.llamacpp.decode) + ", \"decode_of_floor\": " +
             num(r.llamacpp.decode / r.floor) + "}";
      }
      j += "}";
    }
    j += "]}\n";
    if (json_file) {
      if (std::fputs(j.c_str(), json_file.get()) < 0 || std::fclose(json_file.release()) != 0) {
        throw llama3::Error(json_path + ": cannot write (" + std::strerror(errno) + ")");
      }
    }
    if (json) {
      std::fputs(j.c_str(), stdout);
      return 0;
    }
    std::printf("%s%s: %s weights, %s KV cache, %.3f GB read per decoded token; prompt %d, %d decoded after %d, "
                "median of %d; %s kernels, %s matmul precision\n\n", shape.c_str(),
                model_path.empty() ? "" : no_mmap ? " (read into memory)" : " (mapped)", weights.c_str(), kv_cache.c_str(),
                weight_gb, prompt, gen, depth, reps, std::string(llama3::cpu::isa_name(llama3::cpu::isa())).c_str(),
                precision.c_str());
    std::printf("%-8s %11s %14s %13s %12s %13s", "threads", "bandwidth", "prefill tok/s", "decode tok/s", "floor tok/s",
                "decode/floor");
    if (!compare.empty()) {
      std::printf(" %16s %16s %9s %9s %12s", "llama.cpp prefill", "llama.cpp decode", "prefill x", "decode x",
                  "theirs/floor");
    }
    if (lookup > 0) std::printf(" %16s %14s %9s", "self-quote plain", "with lookup", "accepted");
    std::printf("\n");
    for (const Result& r : results) {
      std::printf("%-8u %6.1f GB/s %14.1f %13.2f %12.2f %12.0f%%", r.threads, r.bandwidth, r.prefill, r.decode, r.floor,
                  100 * r.decode / r.floor);
      if (!compare.empty()) {
        std::printf(" %16.1f %16.2f %8.2fx %8.2fx %11.0f%%", r.llamacpp.prefill, r.llamacpp.decode,
                    r.prefill / r.llamacpp.prefill, r.decode / r.llamacpp.decode, 100 * r.llamacpp.decode / r.floor);
      }
      if (lookup > 0) {
        std::printf(" %16.2f %9.2f %3.2fx %4d/%d", r.lookup_plain, r.lookup_decode, r.lookup_decode / r.lookup_plain,
                    r.lookup.accepted, r.lookup.drafted);
      }
      std::printf("\n");
    }
    std::printf("\npeak RSS %.2f GB (without the bandwidth probe's buffer)\n", peak_rss.gb());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llama3-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

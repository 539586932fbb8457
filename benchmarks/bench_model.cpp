// Forward-pass speed on a random model of the Llama 3.2 1B shape (dim 2048, 16 layers, 32 heads, 8 KV heads,
// FeedForward 8192, vocab 128256, tied embeddings), weights in bf16:
//   - prefill tokens/s of a 128-token prompt, decode tokens/s (64 tokens after it), peak RSS;
//   - the memory read bandwidth measured in the same run, and decode as a fraction of the floor it sets
//     (weight bytes read per token / bandwidth);
//   - with 1 thread and with all threads.
//   build/release/benchmarks/bench_model [--prompt 128] [--gen 64] [--reps 3] [--threads 1,2] [--dtype bf16]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "llama3/backends/cpu/matmul.hpp"
#include "llama3/model/quantize.hpp"
#include "llama3/model/synthetic.hpp"
#include "llama3/model/transformer.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double peak_rss_gb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / (1024.0 * 1024.0);  // ru_maxrss is in KiB on Linux
}

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

// Read bandwidth in GB/s: `threads` threads each sum their share of a 1 GiB buffer (far beyond the caches), with
// and without the software prefetch the decode kernels use; the best of 8 passes of each.
double read_bandwidth(unsigned threads) {
  const std::size_t n = (std::size_t{1} << 30) / sizeof(float);
  llama3::Tensor<float> buf({static_cast<std::int64_t>(n)});
  llama3::ThreadPool pool(threads);
  pool.run(threads, [&](std::size_t t) {  // first touch by the threads that read it
    std::fill(buf.data() + n / threads * t, buf.data() + n / threads * (t + 1), 1.0f);
  });
  double best = 0;
  volatile float sink = 0;
  for (int rep = 0; rep < 16; ++rep) {
    const auto t0 = Clock::now();
    std::vector<float> partial(threads);
    pool.run(threads, [&](std::size_t t) {
      const float* p = buf.data() + n / threads * t;
#if defined(__x86_64__)
      if (!llama3::cpu::has_avx2()) {
        partial[t] = sum_portable(p, n / threads);
      } else {
        partial[t] = rep % 2 ? sum_avx2<true>(p, n / threads) : sum_avx2<false>(p, n / threads);
      }
#else
      partial[t] = sum_portable(p, n / threads);
#endif
    });
    const double s = seconds_since(t0);
    for (float x : partial) sink = sink + x;
    best = std::max(best, static_cast<double>(n * sizeof(float)) / s / 1e9);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int prompt = 128, gen = 64, reps = 3;
  std::string threads_list, dtype = "bf16";
  CLI::App app{"Prefill and decode speed of a random Llama 3.2 1B-shaped model, against the memory-bandwidth floor",
               "bench_model"};
  app.add_option("--prompt", prompt, "prompt tokens to prefill")->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--gen", gen, "tokens to decode after the prompt")->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--reps", reps, "repetitions (the median is reported)")->capture_default_str()->check(CLI::Range(1, 100));
  app.add_option("--threads", threads_list, "thread counts to run, comma-separated (default: 1 and all)");
  app.add_option("--dtype", dtype, "weight type")->check(CLI::IsMember({"bf16", "f16", "f32", "q8_0", "q4_0"}))->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  std::vector<unsigned> thread_counts;
  if (threads_list.empty()) {
    thread_counts = {1u};
    if (hw > 1) thread_counts.push_back(hw);
  } else {
    std::stringstream s(threads_list);
    for (std::string t; std::getline(s, t, ',');) thread_counts.push_back(static_cast<unsigned>(std::stoul(t)));
  }

  std::printf("building a random Llama 3.2 1B-shaped model (%s weights)...\n", dtype.c_str());
  std::fflush(stdout);
  const auto t0 = Clock::now();
  const llama3::ModelParams p = llama3::llama3_2_1b_params(prompt + gen, 1);
  llama3::Checkpoint c = dtype == "f16"   ? llama3::synthetic_checkpoint<llama3::f16>(p)
                         : dtype == "f32" ? llama3::synthetic_checkpoint<float>(p)
                                          : llama3::synthetic_checkpoint<llama3::bf16>(p);
  if (dtype == "q8_0" || dtype == "q4_0") {  // from the bf16 weights, as llama-quantize would
    llama3::quantize_weights(c.weights, c.params, llama3::parse_quantization(dtype));
  }
  const double weight_gb = static_cast<double>(llama3::weight_bytes_per_token(c.weights)) / 1e9;
  llama3::Transformer<> model(std::move(c), 1);
  std::printf("built in %.1f s; %.3f GB of weights read per decoded token; AVX2 kernels: %s\n", seconds_since(t0),
              weight_gb, llama3::cpu::has_avx2() ? "yes" : "no");

  std::vector<llama3::TokenId> tokens(static_cast<std::size_t>(prompt));
  for (int i = 0; i < prompt; ++i) tokens[static_cast<std::size_t>(i)] = (i * 7919) % p.vocab_size;

  std::printf("\n%-8s %12s %14s %12s %12s %14s %10s\n", "threads", "bandwidth", "prefill tok/s", "decode tok/s",
              "floor tok/s", "decode/floor", "peak RSS");
  for (const unsigned threads : thread_counts) {
    model.set_threads(threads);
    const double bw = read_bandwidth(threads);
    std::vector<double> prefill, decode;
    for (int rep = 0; rep < reps; ++rep) {
      auto t = Clock::now();
      auto logits = model.forward(tokens, 0, llama3::Logits::last);
      prefill.push_back(prompt / seconds_since(t));
      t = Clock::now();
      for (int i = 0; i < gen; ++i) {
        const float* row = logits.data();
        llama3::TokenId next = static_cast<llama3::TokenId>(std::max_element(row, row + p.vocab_size) - row);
        logits = model.forward(std::span(&next, 1), prompt + i, llama3::Logits::last);
      }
      decode.push_back(gen / seconds_since(t));
    }
    const double floor = bw / weight_gb;
    std::printf("%-8u %9.1f GB/s %14.1f %12.2f %12.2f %13.0f%% %7.2f GB\n", threads, bw, median(prefill),
                median(decode), floor, 100 * median(decode) / floor, peak_rss_gb());
    std::fflush(stdout);
  }
  std::printf("\nprompt %d tokens, %d decoded, median of %d; %s weights; 1B shape: dim 2048, 16 layers, 32/8 heads, "
              "FeedForward 8192, vocab 128256, tied\n", prompt, gen, reps, dtype.c_str());
}

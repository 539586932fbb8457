// The cost of choosing one token from Llama 3's 128,256 logits, per sampler chain, on two kinds of logits: a
// peaked distribution (a trained model: a few tokens hold most of the mass) and a flat one (a random model, the
// worst case for top-p: the nucleus holds most of the vocabulary).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "llama3/generation/sampler.hpp"

namespace {

std::vector<float> make_logits(bool peaked) {
  std::mt19937 rng(1);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> l(128256);
  for (auto& x : l) x = peaked ? 4.0f * n(rng) : 0.5f * n(rng);
  return l;
}

void run(benchmark::State& state, const llama3::SamplingParams& p) {
  const auto logits = make_logits(state.range(0) != 0);
  llama3::SamplerChain chain = llama3::SamplerChain::from(p);
  std::vector<llama3::TokenId> context(512);
  for (std::size_t i = 0; i < context.size(); ++i) context[i] = static_cast<llama3::TokenId>(i * 97 % 128256);
  for (auto _ : state) benchmark::DoNotOptimize(chain.sample(logits, context));
  state.SetLabel(state.range(0) ? "peaked" : "flat");
}

llama3::SamplingParams params(float t, float top_p, int top_k = 0, float min_p = 0, float rep = 1) {
  llama3::SamplingParams p;
  p.temperature = t;
  p.top_p = top_p;
  p.top_k = top_k;
  p.min_p = min_p;
  p.repetition_penalty = rep;
  return p;
}

void BM_Greedy(benchmark::State& s) { run(s, params(0, 1)); }
void BM_Temperature(benchmark::State& s) { run(s, params(0.8f, 1)); }
void BM_TopP(benchmark::State& s) { run(s, params(0.6f, 0.9f)); }          // Meta's defaults
void BM_TopK_TopP(benchmark::State& s) { run(s, params(0.8f, 0.95f, 40)); }  // llama.cpp's defaults
void BM_MinP(benchmark::State& s) { run(s, params(0.8f, 1, 0, 0.05f)); }
void BM_Penalty_TopP(benchmark::State& s) { run(s, params(0.6f, 0.9f, 0, 0, 1.1f)); }

}  // namespace

BENCHMARK(BM_Greedy)->Arg(1)->Arg(0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Temperature)->Arg(1)->Arg(0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TopP)->Arg(1)->Arg(0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TopK_TopP)->Arg(1)->Arg(0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MinP)->Arg(1)->Arg(0)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Penalty_TopP)->Arg(1)->Arg(0)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();

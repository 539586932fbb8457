// The samplers, on logits with known probabilities: each stage keeps exactly what its definition says, and draws
// follow the probabilities that are left (checked with fixed seeds, within 5 standard deviations).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <set>
#include <vector>

#include "llama3/generation/sampler.hpp"

using namespace llama3;

namespace {

// Logits whose softmax is exactly `probs`.
std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> l;
  for (const double p : probs) l.push_back(p > 0 ? static_cast<float>(std::log(p)) : -INFINITY);
  return l;
}

std::map<TokenId, int> histogram(SamplerChain& chain, const std::vector<float>& logits, int n) {
  std::map<TokenId, int> h;
  for (int i = 0; i < n; ++i) ++h[chain.sample(logits)];
  return h;
}

// |count - n p| within 5 sigma of a binomial(n, p).
void require_frequency(const std::map<TokenId, int>& h, TokenId id, int n, double p) {
  const auto it = h.find(id);
  const double count = it == h.end() ? 0 : it->second;
  const double sigma = std::sqrt(n * p * (1 - p));
  INFO("token " << id << ": " << count << " of " << n << ", expected p = " << p);
  REQUIRE(std::fabs(count - n * p) <= 5 * sigma + 1e-9);
}

std::set<TokenId> kept(SamplerStage& stage, const std::vector<float>& logits, std::vector<TokenId> context = {}) {
  Candidates c(logits);
  stage.apply(c, context);
  std::set<TokenId> ids;
  for (const auto& t : c.data()) ids.insert(t.id);
  return ids;
}

SamplingParams params(float temperature, float top_p = 1.0f, std::uint64_t seed = 7) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_p = top_p;
  p.seed = seed;
  return p;
}

}  // namespace

TEST_CASE("top-p keeps exactly the nucleus, as Meta's sample_top_p", "[sampler]") {
  const auto logits = logits_of({0.05, 0.5, 0.15, 0.3});  // sorted: 1 (.5), 3 (.3), 2 (.15), 0 (.05)
  samplers::TopP p60(0.6f), p85(0.85f), p97(0.97f), p10(0.1f), p100(1.0f);
  CHECK(kept(p60, logits) == std::set<TokenId>{1, 3});     // .5 < .6, so the second joins; .8 > .6 stops
  CHECK(kept(p85, logits) == std::set<TokenId>{1, 2, 3});
  CHECK(kept(p97, logits) == std::set<TokenId>{0, 1, 2, 3});
  CHECK(kept(p10, logits) == std::set<TokenId>{1});        // the top token always stays
  CHECK(kept(p100, logits).size() == 4);

  // Draws follow the renormalised nucleus: 0.5/0.8 and 0.3/0.8.
  SamplerChain chain = SamplerChain::from(params(1.0f, 0.6f));
  const int n = 20000;
  const auto h = histogram(chain, logits, n);
  CHECK(h.size() == 2);
  require_frequency(h, 1, n, 0.5 / 0.8);
  require_frequency(h, 3, n, 0.3 / 0.8);
}

TEST_CASE("top-k keeps the k best, min-p its threshold", "[sampler]") {
  const auto logits = logits_of({0.1, 0.4, 0.05, 0.25, 0.2});
  samplers::TopK k2(2), k0(0), k9(9);
  CHECK(kept(k2, logits) == std::set<TokenId>{1, 3});
  CHECK(kept(k0, logits).size() == 5);
  CHECK(kept(k9, logits).size() == 5);

  samplers::MinP m50(0.5f), m25(0.25f), m1(1.0f);
  CHECK(kept(m50, logits) == std::set<TokenId>{1, 3, 4});     // p >= 0.2
  CHECK(kept(m25, logits) == std::set<TokenId>{0, 1, 3, 4});  // p >= 0.1
  CHECK(kept(m1, logits) == std::set<TokenId>{1});

  SamplingParams p = params(1.0f);
  p.top_k = 3;
  SamplerChain chain = SamplerChain::from(p);
  const int n = 20000;
  const auto h = histogram(chain, logits, n);
  CHECK(h.size() == 3);
  require_frequency(h, 1, n, 0.4 / 0.85);
  require_frequency(h, 3, n, 0.25 / 0.85);
  require_frequency(h, 4, n, 0.2 / 0.85);

  SamplingParams m = params(1.0f);
  m.min_p = 0.5f;
  SamplerChain min_p = SamplerChain::from(m);
  const auto hm = histogram(min_p, logits, n);
  CHECK(hm.size() == 3);
  require_frequency(hm, 4, n, 0.2 / 0.85);
}

TEST_CASE("temperature draws from softmax(logits / T), and 0 is greedy", "[sampler]") {
  const std::vector<float> logits = {1.0f, 2.0f, 0.5f, 2.0f};
  SamplerChain greedy = SamplerChain::from(params(0.0f, 0.9f));
  for (int i = 0; i < 50; ++i) CHECK(greedy.sample(logits) == 1);  // ties go to the lower id, as torch.argmax

  const double t = 0.5;
  std::vector<double> p;
  double sum = 0;
  for (const float l : logits) sum += std::exp(l / t);
  for (const float l : logits) p.push_back(std::exp(l / t) / sum);
  SamplerChain chain = SamplerChain::from(params(0.5f));
  const int n = 40000;
  const auto h = histogram(chain, logits, n);
  for (TokenId id = 0; id < 4; ++id) require_frequency(h, id, n, p[static_cast<std::size_t>(id)]);
  CHECK_THROWS_AS(SamplerChain::from(params(-1.0f)), Error);
}

TEST_CASE("penalties move the logits of the tokens in the window, and only those", "[sampler]") {
  const std::vector<float> logits = {2.0f, -1.0f, 3.0f, 0.5f, -2.0f};
  const std::vector<TokenId> context = {0, 1, 0, 3, 0};
  const auto after = [&](samplers::Penalties& p, std::vector<TokenId> ctx) {
    Candidates c(logits);
    p.apply(c, ctx);
    std::vector<float> out(logits.size());
    for (const auto& t : c.data()) out[static_cast<std::size_t>(t.id)] = t.logit;
    return out;
  };
  // Hugging Face: each token present once, whatever its count: positive / r, negative * r.
  samplers::Penalties repetition(2.0f, 0.0f, 0.0f, -1);
  CHECK(after(repetition, context) == std::vector<float>{1.0f, -2.0f, 3.0f, 0.25f, -2.0f});
  // OpenAI: presence once, frequency per occurrence.
  samplers::Penalties openai(1.0f, 0.5f, 0.25f, -1);
  CHECK(after(openai, context) == std::vector<float>{2.0f - 0.5f - 0.75f, -1.0f - 0.5f - 0.25f, 3.0f,
                                                     0.5f - 0.5f - 0.25f, -2.0f});
  // The window: the last 2 tokens only (3 and 0, once each).
  samplers::Penalties window(1.0f, 0.0f, 1.0f, 2);
  CHECK(after(window, context) == std::vector<float>{1.0f, -1.0f, 3.0f, -0.5f, -2.0f});
  CHECK(after(window, {}) == logits);
  {  // candidates no longer in id order (a stage before sorted them): the same values
    Candidates c(logits);
    c.sort();
    repetition.apply(c, context);
    std::vector<float> out(logits.size());
    for (const auto& t : c.data()) out[static_cast<std::size_t>(t.id)] = t.logit;
    CHECK(out == std::vector<float>{1.0f, -2.0f, 3.0f, 0.25f, -2.0f});
  }
  CHECK_THROWS_AS(samplers::Penalties(0.0f, 0, 0, -1), Error);

  // In a chain the penalty changes the choice: greedy would repeat token 0 (2 > 1.9), the penalty prevents it.
  SamplingParams p = params(0.0f);
  p.repetition_penalty = 1.5f;
  const std::vector<float> l2 = {2.0f, 1.9f};
  CHECK(SamplerChain::from(p).sample(l2, std::vector<TokenId>{0}) == 1);
  CHECK(SamplerChain::from(p).sample(l2, std::vector<TokenId>{1}) == 0);
}

TEST_CASE("logit bias and the logits hook forbid or force tokens", "[sampler]") {
  const std::vector<float> logits = {5.0f, 1.0f, 0.0f};
  SamplingParams p = params(1.0f);
  p.logit_bias = {{0, -INFINITY}, {2, 3.0f}};
  SamplerChain chain = SamplerChain::from(p);
  const int n = 20000;
  const auto h = histogram(chain, logits, n);
  CHECK(h.count(0) == 0);
  require_frequency(h, 2, n, std::exp(3.0) / (std::exp(3.0) + std::exp(1.0)));

  SamplingParams hook = params(0.0f);
  std::vector<TokenId> seen_context;
  hook.logits_processor = [&](std::span<TokenCandidate> c, std::span<const TokenId> ctx) {
    seen_context.assign(ctx.begin(), ctx.end());
    for (auto& t : c) {
      if (t.id != 2) t.logit = -INFINITY;  // only token 2 allowed
    }
  };
  const std::vector<TokenId> ctx = {4, 5, 6};
  CHECK(SamplerChain::from(hook).sample(logits, ctx) == 2);
  CHECK(seen_context == ctx);
  CHECK(SamplerChain::from(p).names() == std::vector<std::string>{"logit-bias", "temperature", "draw"});
}

TEST_CASE("a seed fixes the draws, and another seed gives others", "[sampler]") {
  std::vector<float> logits(1000);
  for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(std::sin(static_cast<double>(i)));
  const auto run = [&](std::uint64_t seed) {
    SamplingParams p = params(1.0f, 0.95f, seed);
    p.top_k = 500;
    p.min_p = 0.01f;
    SamplerChain chain = SamplerChain::from(p);
    std::vector<TokenId> out;
    for (int i = 0; i < 200; ++i) {
      out.push_back(chain.sample(logits, out));
      chain.accept(out.back());
    }
    return out;
  };
  CHECK(run(42) == run(42));
  CHECK(run(42) != run(43));
  // The generator's stream is ours (splitmix64), not the standard library's: fixed on every platform.
  Rng rng(0);
  CHECK(rng.next() == 0xE220A8397B1DCDAFull);
}

TEST_CASE("sampling parameters that make no sense are Errors naming the field, NaN included", "[sampler][errors]") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const auto with = [](auto set) {
    SamplingParams p;
    set(p);
    return p;
  };
  CHECK_NOTHROW(SamplingParams{}.validate());
  CHECK_NOTHROW(with([](SamplingParams& p) { p.temperature = 0; p.top_p = 1; p.min_p = 1; p.top_k = 5; }).validate());
  CHECK_NOTHROW(with([&](SamplingParams& p) { p.logit_bias[3] = -inf; }).validate());  // -inf forbids a token
  const std::vector<std::pair<SamplingParams, std::string>> bad = {
      {with([&](SamplingParams& p) { p.temperature = nan; }), "temperature = nan"},
      {with([&](SamplingParams& p) { p.temperature = inf; }), "temperature = inf"},
      {with([&](SamplingParams& p) { p.temperature = -0.5f; }), "temperature = -0.5"},
      {with([&](SamplingParams& p) { p.top_p = nan; }), "top_p = nan"},
      {with([&](SamplingParams& p) { p.top_p = 0; }), "top_p = 0"},
      {with([&](SamplingParams& p) { p.top_p = 2; }), "top_p = 2"},
      {with([&](SamplingParams& p) { p.top_p = -1; }), "top_p = -1"},
      {with([&](SamplingParams& p) { p.min_p = nan; }), "min_p = nan"},
      {with([&](SamplingParams& p) { p.min_p = 1.5f; }), "min_p = 1.5"},
      {with([&](SamplingParams& p) { p.top_k = -1; }), "top_k = -1"},
      {with([&](SamplingParams& p) { p.repetition_penalty = 0; }), "repetition_penalty = 0"},
      {with([&](SamplingParams& p) { p.repetition_penalty = nan; }), "repetition_penalty = nan"},
      {with([&](SamplingParams& p) { p.presence_penalty = inf; }), "presence_penalty = inf"},
      {with([&](SamplingParams& p) { p.frequency_penalty = nan; }), "frequency_penalty = nan"},
      {with([&](SamplingParams& p) { p.penalty_last_n = -2; }), "penalty_last_n = -2"},
      {with([&](SamplingParams& p) { p.logit_bias[7] = nan; }), "logit_bias[7] = nan"},
      {with([&](SamplingParams& p) { p.logit_bias[7] = inf; }), "logit_bias[7] = inf"}};
  for (const auto& [p, says] : bad) {
    INFO(says);
    CHECK_THROWS_WITH(p.validate(), Catch::Contains(says));
    CHECK_THROWS_WITH(SamplerChain::from(p), Catch::Contains(says));  // every chain goes through it
  }
}

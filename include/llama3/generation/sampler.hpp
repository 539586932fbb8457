#pragma once
// Samplers: from the logits of one step to the next token. A SamplerChain runs stages over the candidates in a
// fixed, documented order, as llama.cpp's sampler chain does; stateful stages (penalties, the random generator)
// see every chosen token through accept().
//
// The order of SamplerChain::from(params) (Hugging Face's order, and Meta's for temperature + top_p):
//   1. logit bias and the logits_processor hook        (exact additions / your own masking)
//   2. repetition penalty (Hugging Face), presence and frequency penalties (OpenAI), over the penalty window
//   3. temperature                                     (logits / T; T == 0 means greedy: argmax, no randomness)
//   4. top-k, 5. top-p (the nucleus, as Meta's sample_top_p), 6. min-p      (on the tempered probabilities)
//   7. a draw from what is left, with a seeded generator of our own (the same seed gives the same tokens on any
//      machine and any thread count: the logits do not depend on the thread count either)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "llama3/core/error.hpp"

namespace llama3 {

using TokenId = std::int32_t;

struct TokenCandidate {
  TokenId id;
  float logit;
  float p = 0;  // filled by softmax()
};

// The candidates of one step: all tokens at first, fewer after each truncation.
class Candidates {
public:
  explicit Candidates(std::span<const float> logits) {
    data_.resize(logits.size());
    for (std::size_t i = 0; i < logits.size(); ++i) data_[i] = {static_cast<TokenId>(i), logits[i], 0.0f};
  }
  std::vector<TokenCandidate>& data() noexcept { return data_; }
  const std::vector<TokenCandidate>& data() const noexcept { return data_; }
  std::size_t size() const noexcept { return data_.size(); }

  // Sorts by logit, highest first (ties by lower id, for determinism).
  void sort() {
    if (sorted_) return;
    std::sort(data_.begin(), data_.end(), [](const TokenCandidate& a, const TokenCandidate& b) {
      return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;
    });
    sorted_ = true;
  }
  // p = softmax(logit) over the current candidates, in double for the sums.
  void softmax() {
    float max = -std::numeric_limits<float>::infinity();
    for (const auto& c : data_) max = std::max(max, c.logit);
    double sum = 0;
    for (auto& c : data_) {
      c.p = static_cast<float>(std::exp(static_cast<double>(c.logit) - max));
      sum += c.p;
    }
    for (auto& c : data_) c.p = static_cast<float>(c.p / sum);
  }
  void truncate(std::size_t n) { data_.resize(std::max<std::size_t>(1, std::min(n, data_.size()))); }
  void mark_unsorted() noexcept { sorted_ = false; }

private:
  std::vector<TokenCandidate> data_;
  bool sorted_ = false;
};

// One stage of a chain.
class SamplerStage {
public:
  virtual ~SamplerStage() = default;
  virtual void apply(Candidates& c, std::span<const TokenId> context) = 0;
  virtual void accept(TokenId) {}
  virtual void reset() {}
  virtual std::string name() const = 0;
};

namespace samplers {

class LogitBias : public SamplerStage {
public:
  explicit LogitBias(std::map<TokenId, float> bias) : bias_(std::move(bias)) {}
  void apply(Candidates& c, std::span<const TokenId>) override {
    for (auto& t : c.data()) {
      if (const auto it = bias_.find(t.id); it != bias_.end()) t.logit += it->second;
    }
    c.mark_unsorted();
  }
  std::string name() const override { return "logit-bias"; }

private:
  std::map<TokenId, float> bias_;
};

// Your own hook: sees the logits (as candidates, all tokens) and the context; set a logit to -infinity to forbid
// a token.
class LogitsProcessor : public SamplerStage {
public:
  using Fn = std::function<void(std::span<TokenCandidate>, std::span<const TokenId> context)>;
  explicit LogitsProcessor(Fn fn) : fn_(std::move(fn)) {}
  void apply(Candidates& c, std::span<const TokenId> context) override {
    fn_(c.data(), context);
    c.mark_unsorted();
  }
  std::string name() const override { return "logits-processor"; }

private:
  Fn fn_;
};

// Hugging Face's repetition penalty: every token of the window is penalised once: logit / r if positive, else
// logit * r. OpenAI's presence (once a token appears) and frequency (per appearance) penalties are subtracted.
// The window is the last `last_n` tokens of the sequence, prompt included (-1: the whole sequence).
class Penalties : public SamplerStage {
public:
  Penalties(float repetition, float presence, float frequency, int last_n)
      : repetition_(repetition), presence_(presence), frequency_(frequency), last_n_(last_n) {
    if (!(repetition > 0)) throw Error("repetition penalty must be positive (1 is none)");
  }
  void apply(Candidates& c, std::span<const TokenId> context) override {
    std::unordered_map<TokenId, int> counts;
    const std::size_t n = last_n_ < 0 ? context.size() : std::min<std::size_t>(context.size(), last_n_);
    for (std::size_t i = context.size() - n; i < context.size(); ++i) ++counts[context[i]];
    if (counts.empty()) return;
    for (auto& t : c.data()) {
      const auto it = counts.find(t.id);
      if (it == counts.end()) continue;
      if (repetition_ != 1.0f) t.logit = t.logit > 0 ? t.logit / repetition_ : t.logit * repetition_;
      t.logit -= presence_ + frequency_ * static_cast<float>(it->second);
    }
    c.mark_unsorted();
  }
  std::string name() const override { return "penalties"; }

private:
  float repetition_, presence_, frequency_;
  int last_n_;
};

class Temperature : public SamplerStage {
public:
  explicit Temperature(float t) : t_(t) {
    if (!(t > 0)) throw Error("temperature must be positive here (0 selects greedy decoding)");
  }
  void apply(Candidates& c, std::span<const TokenId>) override {
    for (auto& x : c.data()) x.logit /= t_;
  }
  std::string name() const override { return "temperature"; }

private:
  float t_;
};

class TopK : public SamplerStage {
public:
  explicit TopK(int k) : k_(k) {}
  void apply(Candidates& c, std::span<const TokenId>) override {
    if (k_ <= 0 || static_cast<std::size_t>(k_) >= c.size()) return;
    c.sort();
    c.truncate(static_cast<std::size_t>(k_));
  }
  std::string name() const override { return "top-k"; }

private:
  int k_;
};

// Meta's sample_top_p: keep the most probable tokens while the probability before each is <= p (so the nucleus
// is the smallest set whose mass reaches p, and always holds the top token).
class TopP : public SamplerStage {
public:
  explicit TopP(float p) : p_(p) {}
  void apply(Candidates& c, std::span<const TokenId>) override {
    if (p_ >= 1.0f) return;
    c.sort();
    c.softmax();
    double cumulative = 0;
    std::size_t keep = 0;
    for (const auto& t : c.data()) {
      if (cumulative > p_) break;  // Meta: mask = probs_sum - probs_sort > p
      cumulative += t.p;
      ++keep;
    }
    c.truncate(keep);
  }
  std::string name() const override { return "top-p"; }

private:
  float p_;
};

// min-p: keep the tokens whose probability is at least min_p times the top token's.
class MinP : public SamplerStage {
public:
  explicit MinP(float p) : p_(p) {}
  void apply(Candidates& c, std::span<const TokenId>) override {
    if (p_ <= 0.0f) return;
    c.sort();
    c.softmax();
    const float threshold = c.data().front().p * p_;
    std::size_t keep = 0;
    while (keep < c.size() && c.data()[keep].p >= threshold) ++keep;
    c.truncate(keep);
  }
  std::string name() const override { return "min-p"; }

private:
  float p_;
};

}  // namespace samplers

// A generator whose stream is fixed by its seed on every platform (the standard distributions are not).
class Rng {
public:
  explicit Rng(std::uint64_t seed = 0) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)

private:
  std::uint64_t s_;
};

struct SamplingParams {
  float temperature = 0.6f;  // 0: greedy
  float top_p = 0.9f;        // 1: off
  int top_k = 0;             // 0: off
  float min_p = 0.0f;        // 0: off
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int penalty_last_n = -1;   // the penalty window; -1: the whole sequence
  std::map<TokenId, float> logit_bias;
  samplers::LogitsProcessor::Fn logits_processor = nullptr;
  std::uint64_t seed = 0;
};

class SamplerChain {
public:
  SamplerChain() = default;

  // The chain for params, in the documented order.
  static SamplerChain from(const SamplingParams& p) {
    SamplerChain chain;
    if (!p.logit_bias.empty()) chain.add(std::make_unique<samplers::LogitBias>(p.logit_bias));
    if (p.logits_processor) chain.add(std::make_unique<samplers::LogitsProcessor>(p.logits_processor));
    if (p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
      chain.add(std::make_unique<samplers::Penalties>(p.repetition_penalty, p.presence_penalty, p.frequency_penalty,
                                                      p.penalty_last_n));
    }
    if (p.temperature < 0) throw Error("temperature must be >= 0");
    chain.greedy_ = p.temperature == 0.0f;
    if (!chain.greedy_) {
      chain.add(std::make_unique<samplers::Temperature>(p.temperature));
      if (p.top_k > 0) chain.add(std::make_unique<samplers::TopK>(p.top_k));
      if (p.top_p < 1.0f) chain.add(std::make_unique<samplers::TopP>(p.top_p));
      if (p.min_p > 0.0f) chain.add(std::make_unique<samplers::MinP>(p.min_p));
    }
    chain.rng_ = Rng(p.seed);
    return chain;
  }

  SamplerChain& add(std::unique_ptr<SamplerStage> stage) {
    stages_.push_back(std::move(stage));
    return *this;
  }
  void set_greedy(bool greedy) noexcept { greedy_ = greedy; }
  void set_seed(std::uint64_t seed) noexcept { rng_ = Rng(seed); }

  // Runs the stages, then picks: the best candidate when greedy, else a draw by probability.
  TokenId sample(std::span<const float> logits, std::span<const TokenId> context = {}) {
    Candidates c(logits);
    for (auto& s : stages_) s->apply(c, context);
    if (greedy_) {
      const auto best = std::min_element(c.data().begin(), c.data().end(), [](const auto& a, const auto& b) {
        return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;
      });
      return best->id;
    }
    c.sort();
    c.softmax();
    const double u = rng_.uniform();
    double cumulative = 0;
    for (const auto& t : c.data()) {
      cumulative += t.p;
      if (u < cumulative) return t.id;
    }
    return c.data().back().id;  // rounding left a sliver
  }

  // Tells the stateful stages which token was chosen.
  void accept(TokenId t) {
    for (auto& s : stages_) s->accept(t);
  }
  void reset() {
    for (auto& s : stages_) s->reset();
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& s : stages_) out.push_back(s->name());
    out.push_back(greedy_ ? "greedy" : "draw");
    return out;
  }

private:
  std::vector<std::unique_ptr<SamplerStage>> stages_;
  bool greedy_ = true;
  Rng rng_;
};

}  // namespace llama3

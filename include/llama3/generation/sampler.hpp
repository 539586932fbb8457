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
#include <array>
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

  // The candidates' order: higher logit first, ties to the lower id (as torch.argmax), so results are deterministic.
  static bool better(const TokenCandidate& a, const TokenCandidate& b) noexcept {
    return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;
  }

  // Sorts by logit, highest first.
  void sort() { sort_top(data_.size()); }
  // Sorts the best n to the front (the rest in no order): truncations need only the head of 128k candidates.
  void sort_top(std::size_t n) {
    if (sorted_) return;
    n = std::min(n, data_.size());
    std::partial_sort(data_.begin(), data_.begin() + static_cast<std::ptrdiff_t>(n), data_.end(), better);
    sorted_ = n == data_.size();
  }
  // p = softmax(logit) over the current candidates, in double for the sums.
  void softmax() {
    float max = -std::numeric_limits<float>::infinity();
    for (const auto& c : data_) max = std::max(max, c.logit);
    double sum = 0;
    for (auto& c : data_) {
      c.p = std::exp(c.logit - max);  // each term in float (ample for a probability), the sum in double
      sum += c.p;
    }
    const auto inv = static_cast<float>(1.0 / sum);
    for (auto& c : data_) c.p *= inv;
    probs_ = true;
  }
  // Whether p holds softmax(logit) over a superset of the candidates (truncation keeps it; new logits do not).
  bool has_probs() const noexcept { return probs_; }
  void logits_changed() noexcept { probs_ = false; }
  // Keeps the first n (at least one); after sort_top(m) with n <= m, what is left is sorted.
  void truncate(std::size_t n) { data_.resize(std::max<std::size_t>(1, std::min(n, data_.size()))); }
  void mark_sorted() noexcept { sorted_ = true; }
  void mark_unsorted() noexcept {
    sorted_ = false;
    probs_ = false;
  }

private:
  std::vector<TokenCandidate> data_;
  bool sorted_ = false;
  bool probs_ = false;
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
    const auto penalise = [&](TokenCandidate& t, int count) {
      if (repetition_ != 1.0f) t.logit = t.logit > 0 ? t.logit / repetition_ : t.logit * repetition_;
      t.logit -= presence_ + frequency_ * static_cast<float>(count);
    };
    auto& d = c.data();
    for (const auto& [id, count] : counts) {
      const auto i = static_cast<std::size_t>(id);
      if (i < d.size() && d[i].id == id) {  // the candidates are still in id order (the usual case): index
        penalise(d[i], count);
      } else {
        for (auto& t : d) {
          if (t.id == id) penalise(t, count);
        }
      }
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
    c.logits_changed();  // the order stays
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
    c.sort_top(static_cast<std::size_t>(k_));
    c.truncate(static_cast<std::size_t>(k_));
    c.mark_sorted();
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
    c.softmax();
    // The nucleus is the best tokens up to the one whose cumulative probability first passes p. Rather than sort
    // 128k tokens, bucket them by logit (one pass, as llama.cpp does): every token of the buckets above the one
    // where the mass passes p is kept, and only that bucket is sorted.
    auto& d = c.data();
    constexpr int n_buckets = 512;
    float top = -std::numeric_limits<float>::infinity(), bottom = std::numeric_limits<float>::infinity();
    for (const auto& t : d) {
      top = std::max(top, t.logit);
      if (std::isfinite(t.logit)) bottom = std::min(bottom, t.logit);
    }
    const float scale = top > bottom ? static_cast<float>(n_buckets) / (top - bottom) : 0.0f;
    const auto bucket = [&](float logit) {
      const float b = (top - logit) * scale;  // 0 for the best; NaN or huge for -inf
      return b < static_cast<float>(n_buckets - 1) ? static_cast<int>(b) : n_buckets - 1;
    };
    std::array<double, n_buckets> mass{};
    for (const auto& t : d) mass[static_cast<std::size_t>(bucket(t.logit))] += t.p;
    int crossing = 0;
    double above = 0;  // the mass of the buckets before `crossing`
    while (crossing < n_buckets - 1 && !(above + mass[static_cast<std::size_t>(crossing)] > p_)) {
      above += mass[static_cast<std::size_t>(crossing)];
      ++crossing;
    }
    // [kept buckets | the crossing bucket | the rest], then the crossing bucket in order.
    const auto mid = std::partition(d.begin(), d.end(), [&](const TokenCandidate& t) { return bucket(t.logit) < crossing; });
    const auto end = std::partition(mid, d.end(), [&](const TokenCandidate& t) { return bucket(t.logit) == crossing; });
    std::sort(mid, end, Candidates::better);
    double before = 0;
    for (auto it = d.begin(); it != mid; ++it) before += it->p;
    auto keep = mid;
    while (keep != end && !(before > p_)) {  // Meta: mask = probs_sum - probs_sort > p
      before += keep->p;
      ++keep;
    }
    c.truncate(static_cast<std::size_t>(keep - d.begin()));  // in no particular order, but always the same one
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
    c.softmax();
    float best = 0;
    for (const auto& t : c.data()) best = std::max(best, t.p);
    const float threshold = best * p_;
    auto& d = c.data();
    d.erase(std::remove_if(d.begin(), d.end(), [&](const TokenCandidate& t) { return t.p < threshold; }), d.end());
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

  // Throws an Error naming the first field that makes no sense (NaN never does). SamplerChain::from calls it, so
  // every way of sampling goes through it; tools call it to report their options.
  void validate() const {
    const auto fail = [](const char* field, double v, const char* expected) {
      throw Error(detail::cat(field, " = ", v, ": expected ", expected));
    };
    if (!(temperature >= 0 && std::isfinite(temperature))) fail("temperature", temperature, "a finite number >= 0 (0: greedy)");
    if (!(top_p > 0 && top_p <= 1)) fail("top_p", top_p, "0 < top_p <= 1 (1: off)");
    if (top_k < 0) fail("top_k", top_k, "an integer >= 0 (0: off)");
    if (!(min_p >= 0 && min_p <= 1)) fail("min_p", min_p, "0 <= min_p <= 1 (0: off)");
    if (!(repetition_penalty > 0 && std::isfinite(repetition_penalty))) {
      fail("repetition_penalty", repetition_penalty, "a finite number > 0 (1: off)");
    }
    if (!std::isfinite(presence_penalty)) fail("presence_penalty", presence_penalty, "a finite number (0: off)");
    if (!std::isfinite(frequency_penalty)) fail("frequency_penalty", frequency_penalty, "a finite number (0: off)");
    if (penalty_last_n < -1) fail("penalty_last_n", penalty_last_n, "-1 (the whole sequence), 0 or more tokens");
    for (const auto& [id, bias] : logit_bias) {
      if (std::isnan(bias) || bias == std::numeric_limits<float>::infinity()) {
        throw Error(detail::cat("logit_bias[", id, "] = ", bias, ": expected a finite number, or -inf to forbid it"));
      }
    }
  }
};

class SamplerChain {
public:
  SamplerChain() = default;

  // The chain for params, in the documented order.
  static SamplerChain from(const SamplingParams& p) {
    p.validate();
    SamplerChain chain;
    if (!p.logit_bias.empty()) chain.add(std::make_unique<samplers::LogitBias>(p.logit_bias));
    if (p.logits_processor) chain.add(std::make_unique<samplers::LogitsProcessor>(p.logits_processor));
    if (p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
      chain.add(std::make_unique<samplers::Penalties>(p.repetition_penalty, p.presence_penalty, p.frequency_penalty,
                                                      p.penalty_last_n));
    }
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
    if (greedy_ && stages_.empty()) {  // argmax, the lowest id on ties (as torch.argmax)
      std::size_t best = 0;
      for (std::size_t i = 1; i < logits.size(); ++i) best = logits[i] > logits[best] ? i : best;
      return static_cast<TokenId>(best);
    }
    Candidates c(logits);
    for (auto& s : stages_) s->apply(c, context);
    if (greedy_) {
      const auto best = std::min_element(c.data().begin(), c.data().end(), Candidates::better);
      return best->id;
    }
    if (!c.has_probs()) c.softmax();
    // In the candidates' order, which the stages fixed (no need to sort 128k tokens), over the mass left.
    double total = 0;
    for (const auto& t : c.data()) total += t.p;
    const double u = rng_.uniform() * total;
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

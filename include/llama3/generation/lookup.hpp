#pragma once
// Prompt-lookup decoding: speculation from n-grams already in the context, with no draft model. When the text
// being written repeats the context (a reply quoting its prompt, code being edited), the tokens that followed the
// last occurrence of the current n-gram are a good guess at what comes next. Up to k of them are verified in one
// forward pass (the pass reads the weights once for all of them), and the longest prefix the model agrees with is
// kept, plus the model's own token after it.
//
// Exactness: each position's token is drawn by the same sampler, from the logits of the same context, in the same
// order as plain decoding, so the output distribution is that of plain decoding; a draft is accepted only when the
// draw equals it. With up to cpu::gemv_max_rows - 1 drafts the verify pass stays in the matrix-vector kernels, whose
// per-token arithmetic is that of decoding one token, so greedy output (and sampled output for a seed) is token for
// token that of plain decoding.
#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "llama3/backends/cpu/matmul_reference.hpp"
#include "llama3/core/tensor.hpp"
#include "llama3/generation/sampler.hpp"
#include "llama3/model/model_args.hpp"

namespace llama3 {

// Drafts beyond this would push the verify pass out of the matrix-vector kernels, and with it bit-exactness.
inline constexpr int lookup_max_draft = static_cast<int>(cpu::gemv_max_rows) - 1;

struct LookupStats {
  int passes = 0;    // verify passes run (each decodes at least one token)
  int drafted = 0;   // draft tokens proposed
  int accepted = 0;  // of which the model agreed with this many
};

// The tokens that followed the most recent earlier occurrence of the context's last n tokens (n from max_ngram
// down to min_ngram; the longest n that matches wins), at most max_draft of them.
inline std::vector<TokenId> propose_lookup(std::span<const TokenId> context, int max_draft, int max_ngram = 3,
                                           int min_ngram = 1) {
  std::vector<TokenId> draft;
  const auto size = static_cast<std::ptrdiff_t>(context.size());
  if (max_draft <= 0) return draft;
  for (std::ptrdiff_t n = std::min<std::ptrdiff_t>(max_ngram, size - 1); n >= min_ngram; --n) {
    const TokenId* tail = context.data() + size - n;
    // Most recent first: an earlier start i whose n tokens equal the tail and are followed by something.
    for (std::ptrdiff_t i = size - n - 1; i >= 0; --i) {
      if (!std::equal(tail, tail + n, context.data() + i)) continue;
      const std::ptrdiff_t from = i + n, to = std::min(size, from + max_draft);
      draft.assign(context.begin() + from, context.begin() + to);
      return draft;
    }
  }
  return draft;
}

// Decodes one sequence. On entry the KV cache holds all of `tokens` and `logits` is the row that predicts the next
// position. Each token drawn is appended to `tokens` and passed to emit(token, its logits row); decoding ends when
// emit returns false or `tokens` reaches `end` tokens. lookup: draft tokens per pass (0: plain decoding, one token
// a pass); forward(span of tokens, start_pos) runs the model and returns their logits, one row each.
template <class Forward, class Emit>
void decode_sequence(std::vector<TokenId>& tokens, const float* logits, int vocab, std::size_t end, int lookup,
                     SamplerChain& chain, Forward&& forward, Emit&& emit, LookupStats* stats = nullptr) {
  const auto draw = [&](const float* row) {
    const TokenId t = chain.sample(std::span<const float>(row, static_cast<std::size_t>(vocab)), tokens);
    chain.accept(t);
    tokens.push_back(t);
    return t;
  };
  if (tokens.size() >= end) return;
  if (!emit(draw(logits), logits) || tokens.size() >= end) return;
  std::vector<TokenId> batch;
  while (true) {
    // The last token is not in the cache yet: it goes first, the draft after it. Row j of the pass predicts the
    // position after batch[j]; the draft stops where the last row would predict past `end`.
    const int room = static_cast<int>(end - tokens.size()) - 1;
    const std::vector<TokenId> draft = propose_lookup(tokens, std::min(lookup, room));
    batch.assign(1, tokens.back());
    batch.insert(batch.end(), draft.begin(), draft.end());
    const Tensor<float> out = forward(std::span<const TokenId>(batch), static_cast<int>(tokens.size()) - 1);
    if (stats) {
      ++stats->passes;
      stats->drafted += static_cast<int>(draft.size());
    }
    for (std::size_t j = 0; j <= draft.size(); ++j) {
      const float* row = out.data() + static_cast<std::int64_t>(j) * vocab;
      const TokenId t = draw(row);
      if (!emit(t, row) || tokens.size() >= end) return;
      if (j == draft.size() || t != draft[j]) break;  // t is new: the next pass starts from it
      if (stats) ++stats->accepted;
    }
  }
}

}  // namespace llama3

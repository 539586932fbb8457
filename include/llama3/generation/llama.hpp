#pragma once
// Llama: the generation layer, mirroring Meta's generation.py.
//
//   auto llama = llama3::Llama<>::build("Llama3.2-1B-Instruct/", "", /*max_seq_len=*/512, /*max_batch_size=*/4);
//   auto out = llama.chat_completion({{{llama3::Role::user, "What is the capital of France?"}}});
//   std::cout << out[0].generation.content;
//
// generate() has Meta's loop semantics: the batch is ragged, decoding starts at the shortest prompt and keeps
// prompt tokens wherever a longer prompt still has them, total_len = min(max_seq_len, max_gen_len + longest
// prompt), and a row ends at <|end_of_text|>, <|eot_id|> or <|eom_id|>. Beyond Meta: the sampler chain of
// sampler.hpp, stop strings, and a streaming callback.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llama3/chat_format.hpp"
#include "llama3/generation/lookup.hpp"
#include "llama3/generation/sampler.hpp"
#include "llama3/model/transformer.hpp"
#include "llama3/tokenizer.hpp"

namespace llama3 {

struct CompletionPrediction {
  std::string generation;
  std::vector<std::string> tokens;  // when logprobs: each token's text
  std::vector<float> logprobs;      // when logprobs
};

struct ChatPrediction {
  Message generation;  // role assistant
  std::vector<std::string> tokens;
  std::vector<float> logprobs;
};

struct GenerationOutput {
  std::vector<std::vector<TokenId>> tokens;   // per row: the generated tokens (with the prompt when echo)
  std::vector<std::vector<float>> logprobs;   // per row, when asked: log-probability of each of those tokens
  std::vector<std::string> stopped_by;        // per row: the stop token's or stop string's text, or "" (length)
  std::vector<std::string> text;              // per row: the generated text (never the prompt), as streamed: cut
                                              // just before a stop string, invalid UTF-8 replaced by U+FFFD
  LookupStats lookup;                         // prompt lookup's passes, drafted and accepted tokens
};

// Called with each new piece of a row's text as soon as it is complete UTF-8; return false to end that row.
using StreamCallback = std::function<bool(int row, std::string_view text)>;

struct GenerateOptions {
  SamplingParams sampling;                // temperature 0 is greedy
  std::vector<std::string> stop;          // stop strings: a row ends when its text contains one (not kept)
  bool logprobs = false;
  bool echo = false;
  StreamCallback on_text = nullptr;
  // Prompt-lookup decoding: up to this many draft tokens from the context verified per forward pass (0: off; at
  // most lookup_max_draft). Same tokens as without it (see generation/lookup.hpp); one prompt at a time only, a
  // batch of several decodes plainly.
  int lookup = 0;
};

// The tokenizer of a model: a .gguf file's own (when it carries one), else tokenizer.model (Meta), tokenizer.json
// (Hugging Face) or original/tokenizer.model in the model's folder (beside a .gguf file, for one converted without
// its tokenizer). `what_to_do` ends the error when there is none (a command-line tool names its option).
inline std::filesystem::path find_tokenizer(const std::filesystem::path& model,
                                            std::string_view what_to_do = "pass the tokenizer's path") {
  const bool gguf = std::filesystem::is_regular_file(model) && model.extension() == ".gguf";
  if (gguf && gguf_has_tokenizer(io::read_gguf_file(model))) return model;
  const std::filesystem::path dir = gguf ? model.parent_path() : model;
  for (const char* name : {"tokenizer.model", "tokenizer.json", "original/tokenizer.model"}) {
    if (std::filesystem::exists(dir / name)) return dir / name;
  }
  if (gguf) {
    throw Error(model.string() + ": the GGUF file has no tokenizer (tokenizer.ggml.tokens) and there is no "
                "tokenizer.model or tokenizer.json beside it; " + std::string(what_to_do));
  }
  throw Error(dir.string() + ": no tokenizer.model or tokenizer.json in the model folder; " + std::string(what_to_do));
}

template <class Args = DynamicArgs, class Device = Cpu>
class Llama {
public:
  using Model = Transformer<Args, Device>;

  // Meta's Llama.build: the checkpoint folder (either format), the tokenizer (empty: found in the folder), the
  // KV cache limits, and the seed of the sampler (Meta seeds torch with 1).
  static Llama build(const std::filesystem::path& ckpt_dir, const std::filesystem::path& tokenizer_path,
                     int max_seq_len, int max_batch_size, std::uint64_t seed = 1, unsigned threads = 0,
                     std::function<void(const LoadProgress&)> progress = nullptr) {
    LoadOptions options;
    options.max_seq_len = max_seq_len;
    options.max_batch_size = max_batch_size;
    options.progress = std::move(progress);
    return build(ckpt_dir, tokenizer_path, options, seed, threads);
  }

  // The same with every loading option (max_seq_len, max_batch_size, progress, quantize).
  static Llama build(const std::filesystem::path& ckpt_dir, const std::filesystem::path& tokenizer_path,
                     const LoadOptions& options, std::uint64_t seed = 1, unsigned threads = 0) {
    Checkpoint c = load_checkpoint(ckpt_dir, options);
    // Llama 3.1 and later (scaled RoPE) name their special tokens as llama-models does (<|eom_id|>, ...).
    const SpecialTokenNames names = c.params.use_scaled_rope ? SpecialTokenNames::llama3_1 : SpecialTokenNames::llama3;
    Tokenizer tokenizer(tokenizer_path.empty() ? find_tokenizer(ckpt_dir) : tokenizer_path, names);
    if (tokenizer.n_words() != c.params.vocab_size) {
      throw Error(detail::cat("the tokenizer has ", tokenizer.n_words(), " tokens but the model's vocabulary has ",
                              c.params.vocab_size, ": they do not belong together"));
    }
    return Llama(Model(std::move(c), threads), std::move(tokenizer), seed);
  }

  Llama(Model model, Tokenizer tokenizer, std::uint64_t seed = 1)
      : model_(std::move(model)), tokenizer_(std::move(tokenizer)), rng_(seed) {}

  Llama(Llama&& o) noexcept : model_(std::move(o.model_)), tokenizer_(std::move(o.tokenizer_)), rng_(o.rng_),
                              cache_epoch_(o.cache_epoch_) {}

  Model& model() noexcept { return model_; }
  const Tokenizer& tokenizer() const noexcept { return tokenizer_; }
  ChatFormat formatter() const { return ChatFormat(tokenizer_); }
  // Bumped whenever generate() overwrites the KV cache, so that a ChatSession knows its cached prefix is gone.
  std::uint64_t cache_epoch() const noexcept { return cache_epoch_; }
  void invalidate_cache() noexcept { ++cache_epoch_; }

  // Meta's generate(prompt_tokens, max_gen_len, temperature, top_p, logprobs, echo).
  GenerationOutput generate(const std::vector<std::vector<TokenId>>& prompt_tokens, int max_gen_len,
                            float temperature = 0.6f, float top_p = 0.9f, bool logprobs = false, bool echo = false) {
    GenerateOptions o;
    o.sampling.temperature = temperature;
    o.sampling.top_p = top_p;
    o.sampling.seed = rng_.next();  // one stream of randomness from build()'s seed, as Meta's torch.manual_seed
    o.logprobs = logprobs;
    o.echo = echo;
    return generate(prompt_tokens, max_gen_len, o);
  }

  GenerationOutput generate(const std::vector<std::vector<TokenId>>& prompt_tokens, int max_gen_len,
                            const GenerateOptions& o) {
    const ModelParams& params = model_.params();
    const int bsz = static_cast<int>(prompt_tokens.size());
    if (bsz == 0) throw Error("generate: no prompts");
    if (bsz > params.max_batch_size) {
      throw Error(detail::cat("generate: ", bsz, " prompts, but the model was built with max_batch_size ",
                              params.max_batch_size));
    }
    if (max_gen_len < 0) throw Error("generate: max_gen_len must be >= 0");
    o.sampling.validate();  // before anything is touched
    if (o.lookup < 0 || o.lookup > lookup_max_draft) {
      throw Error(detail::cat("generate: lookup ", o.lookup, ": expected 0 (off) to ", lookup_max_draft, " draft tokens"));
    }
    std::size_t min_prompt_len = SIZE_MAX, max_prompt_len = 0;
    for (std::size_t k = 0; k < prompt_tokens.size(); ++k) {
      const auto n = prompt_tokens[k].size();
      if (n == 0) throw Error(detail::cat("generate: prompt ", k, " is empty"));
      if (n >= static_cast<std::size_t>(params.max_seq_len)) {
        throw Error(detail::cat("generate: prompt ", k, " has ", n, " tokens; with max_seq_len ", params.max_seq_len,
                                " a prompt must be shorter, to leave room for the reply"));
      }
      min_prompt_len = std::min(min_prompt_len, n);
      max_prompt_len = std::max(max_prompt_len, n);
    }
    const int total_len = static_cast<int>(std::min<std::size_t>(params.max_seq_len, max_gen_len + max_prompt_len));
    const int vocab = params.vocab_size;
    invalidate_cache();

    constexpr TokenId pad = Tokenizer::pad_id;
    std::vector<std::vector<TokenId>> tokens(static_cast<std::size_t>(bsz), std::vector<TokenId>(total_len, pad));
    std::vector<std::vector<float>> token_logprobs(static_cast<std::size_t>(bsz), std::vector<float>(total_len, 0.0f));
    for (int k = 0; k < bsz; ++k) std::copy(prompt_tokens[k].begin(), prompt_tokens[k].end(), tokens[k].begin());
    const auto is_prompt = [&](int k, int pos) { return pos < static_cast<int>(prompt_tokens[k].size()); };

    std::vector<SamplerChain> chains;
    for (int k = 0; k < bsz; ++k) {
      SamplingParams s = o.sampling;
      s.seed = o.sampling.seed + 0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(k);  // a stream per row
      chains.push_back(SamplerChain::from(s));
    }
    std::vector<StreamDecoder> streams(static_cast<std::size_t>(bsz), StreamDecoder(tokenizer_));
    std::vector<std::string> text(static_cast<std::size_t>(bsz));        // each row's generated text so far
    std::vector<std::size_t> streamed(static_cast<std::size_t>(bsz), 0);  // how much of it on_text has had
    std::vector<bool> done(static_cast<std::size_t>(bsz), false);
    std::vector<bool> cut(static_cast<std::size_t>(bsz), false);  // ended by a stop string or the callback
    std::vector<std::string> stopped_by(static_cast<std::size_t>(bsz));
    std::vector<int> end_at(static_cast<std::size_t>(bsz), total_len);  // a row's tokens end here (stop string)
    // Per row, after each generated token: where its text ends (bytes of an incomplete character count as text).
    std::vector<std::vector<std::size_t>> piece_end(static_cast<std::size_t>(bsz));
    const auto& stop_tokens = tokenizer_.stop_tokens();
    const auto is_stop = [&](TokenId t) { return std::find(stop_tokens.begin(), stop_tokens.end(), t) != stop_tokens.end(); };

    // log-softmax of the raw logits at `target` (Meta: -cross_entropy), 0 for the pad token.
    const auto logprob = [&](const float* row, TokenId target) {
      if (target == pad) return 0.0f;
      const float max = *std::max_element(row, row + vocab);
      double sum = 0;
      for (int i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(row[i]) - max);
      return static_cast<float>(row[target] - max - std::log(sum));
    };

    // The token drawn for row k at cur_pos: stop tokens, the text, stop strings and the stream.
    const auto take = [&](int k, int cur_pos, TokenId next) {
      if (is_stop(next)) {
        done[k] = true;
        stopped_by[k] = std::string(tokenizer_.token_to_piece(next));
      } else {
        text[k] += streams[k].push(next);
        piece_end[k].push_back(text[k].size() + streams[k].pending_bytes());
        if (!o.stop.empty() && check_stop_strings(o.stop, text[k], stopped_by[k])) {
          done[k] = cut[k] = true;
          // Keep the tokens wholly before the stop string.
          std::size_t n = 0;  // up to the last token whose text ends at or before the cut
          for (std::size_t i = 0; i < piece_end[k].size(); ++i) {
            if (piece_end[k][i] <= text[k].size()) n = i + 1;
          }
          end_at[k] = static_cast<int>(prompt_tokens[k].size()) + static_cast<int>(n);
        }
        if (!stream_out(o, k, text[k], streamed[k], done[k])) {
          done[k] = cut[k] = true;  // the callback ended the row: keep what it has seen
          end_at[k] = std::min(end_at[k], cur_pos + 1);
        }
      }
    };

    int prev_pos = 0;
    const bool need_all = o.logprobs;
    if (static_cast<int>(min_prompt_len) == total_len) {  // no room to generate: score the prompts only
      const Tensor<float> logits = forward_rows(tokens, 0, total_len, Logits::all);
      if (o.logprobs) {
        for (int k = 0; k < bsz; ++k) {
          for (int t = 0; t + 1 < total_len; ++t) {
            token_logprobs[k][t + 1] = logprob(logits.data() + (static_cast<std::int64_t>(k) * total_len + t) * vocab,
                                               tokens[k][t + 1]);
          }
        }
      }
    }
    LookupStats lookup_stats;
    if (o.lookup > 0 && bsz == 1 && static_cast<int>(min_prompt_len) < total_len) {
      // One sequence with prompt lookup: the prompt, then passes of the last token and its drafts.
      const int plen = static_cast<int>(min_prompt_len);
      const Tensor<float> logits = forward_rows(tokens, 0, plen, need_all ? Logits::all : Logits::last);
      if (o.logprobs) {
        for (int t = 0; t + 1 < plen; ++t) token_logprobs[0][t + 1] = logprob(logits.data() + t * vocab, tokens[0][t + 1]);
      }
      std::vector<TokenId> sequence(tokens[0].begin(), tokens[0].begin() + plen);
      decode_sequence(
          sequence, logits.data() + (need_all ? plen - 1 : 0) * vocab, vocab, static_cast<std::size_t>(total_len),
          o.lookup, chains[0],
          [&](std::span<const TokenId> batch, int start_pos) { return model_.forward(batch, 1, start_pos, Logits::all); },
          [&](TokenId next, const float* row) {
            const int pos = static_cast<int>(sequence.size()) - 1;
            tokens[0][pos] = next;
            if (o.logprobs) token_logprobs[0][pos] = logprob(row, next);
            take(0, pos, next);
            return !done[0];
          },
          &lookup_stats);
    } else {
      for (int cur_pos = static_cast<int>(min_prompt_len); cur_pos < total_len; ++cur_pos) {
        const int seqlen = cur_pos - prev_pos;
        const Tensor<float> logits = forward_rows(tokens, prev_pos, cur_pos, need_all ? Logits::all : Logits::last);
        const int rows_per_seq = need_all ? seqlen : 1;
        for (int k = 0; k < bsz; ++k) {
          const float* last = logits.data() + (static_cast<std::int64_t>(k) * rows_per_seq + rows_per_seq - 1) * vocab;
          TokenId next;
          if (is_prompt(k, cur_pos)) {
            next = tokens[k][cur_pos];  // only replace a token once the prompt is used up
          } else if (done[k]) {
            next = stop_tokens.front();  // a finished row is fed a stop token; its output is cut before it
          } else {
            std::span<const TokenId> context(tokens[k].data(), static_cast<std::size_t>(cur_pos));
            next = chains[k].sample(std::span<const float>(last, vocab), context);
            chains[k].accept(next);
          }
          tokens[k][cur_pos] = next;
          if (o.logprobs) {
            for (int t = 0; t < seqlen; ++t) {
              const float* row = logits.data() + (static_cast<std::int64_t>(k) * seqlen + t) * vocab;
              token_logprobs[k][prev_pos + t + 1] = logprob(row, tokens[k][prev_pos + t + 1]);
            }
          }
          if (!is_prompt(k, cur_pos) && !done[k]) take(k, cur_pos, next);
        }
        prev_pos = cur_pos;
        bool all_done = true;
        for (int k = 0; k < bsz; ++k) all_done = all_done && (done[k] && !is_prompt(k, cur_pos));
        if (all_done) break;
      }
    }
    for (int k = 0; k < bsz; ++k) {  // the rest of the stream: what was held back, a character cut by the end
      if (!cut[k]) {
        text[k] += streams[k].finish();
        stream_out(o, k, text[k], streamed[k], true);
      }
    }

    GenerationOutput out;
    for (int k = 0; k < bsz; ++k) {
      const int plen = static_cast<int>(prompt_tokens[k].size());
      const int start = o.echo ? 0 : plen;
      const int end = std::min({plen + max_gen_len, total_len, end_at[k]});
      std::vector<TokenId> toks(tokens[k].begin() + start, tokens[k].begin() + std::max(start, end));
      std::vector<float> probs;
      if (o.logprobs) probs.assign(token_logprobs[k].begin() + start, token_logprobs[k].begin() + std::max(start, end));
      // Meta cuts at the first of each stop token (with echo, one in the prompt counts too).
      for (const TokenId s : stop_tokens) {
        const auto it = std::find(toks.begin(), toks.end(), s);
        if (it != toks.end()) {
          const auto n = it - toks.begin();
          toks.resize(static_cast<std::size_t>(n));
          if (o.logprobs) probs.resize(static_cast<std::size_t>(n));
        }
      }
      out.tokens.push_back(std::move(toks));
      if (o.logprobs) out.logprobs.push_back(std::move(probs));
      out.stopped_by.push_back(stopped_by[k]);
      out.text.push_back(std::move(text[k]));
    }
    out.lookup = lookup_stats;
    return out;
  }

  // Meta's text_completion: each prompt with BOS, max_gen_len defaulting to max_seq_len - 1.
  std::vector<CompletionPrediction> text_completion(const std::vector<std::string>& prompts, float temperature = 0.6f,
                                                    float top_p = 0.9f, std::optional<int> max_gen_len = std::nullopt,
                                                    bool logprobs = false, bool echo = false) {
    GenerateOptions o;
    o.sampling.temperature = temperature;
    o.sampling.top_p = top_p;
    o.sampling.seed = rng_.next();
    o.logprobs = logprobs;
    o.echo = echo;
    return text_completion(prompts, max_gen_len, o);
  }

  std::vector<CompletionPrediction> text_completion(const std::vector<std::string>& prompts,
                                                    std::optional<int> max_gen_len, const GenerateOptions& o) {
    std::vector<std::vector<TokenId>> prompt_tokens;
    for (const auto& p : prompts) prompt_tokens.push_back(tokenizer_.encode(p, true, false));
    const GenerationOutput g = generate(prompt_tokens, max_gen_len.value_or(model_.params().max_seq_len - 1), o);
    std::vector<CompletionPrediction> out;
    for (std::size_t k = 0; k < prompts.size(); ++k) {
      CompletionPrediction p;
      p.generation = generated_text(g, k, o, prompt_tokens[k]);
      if (o.logprobs) {
        for (const TokenId t : g.tokens[k]) p.tokens.push_back(utf8::replace_invalid(tokenizer_.decode({t})));
        p.logprobs = g.logprobs[k];
      }
      out.push_back(std::move(p));
    }
    return out;
  }

  // Meta's chat_completion: each dialog through the chat format (BOS once), the reply as an assistant message.
  std::vector<ChatPrediction> chat_completion(const std::vector<Dialog>& dialogs, float temperature = 0.6f,
                                              float top_p = 0.9f, std::optional<int> max_gen_len = std::nullopt,
                                              bool logprobs = false) {
    GenerateOptions o;
    o.sampling.temperature = temperature;
    o.sampling.top_p = top_p;
    o.sampling.seed = rng_.next();
    o.logprobs = logprobs;
    return chat_completion(dialogs, max_gen_len, o);
  }

  std::vector<ChatPrediction> chat_completion(const std::vector<Dialog>& dialogs, std::optional<int> max_gen_len,
                                              const GenerateOptions& o) {
    const ChatFormat format(tokenizer_);
    std::vector<std::vector<TokenId>> prompt_tokens;
    for (const auto& d : dialogs) prompt_tokens.push_back(format.encode_dialog_prompt(d));
    const GenerationOutput g = generate(prompt_tokens, max_gen_len.value_or(model_.params().max_seq_len - 1), o);
    std::vector<ChatPrediction> out;
    for (std::size_t k = 0; k < dialogs.size(); ++k) {
      ChatPrediction p;
      p.generation = {Role::assistant, generated_text(g, k, o, prompt_tokens[k])};
      if (o.logprobs) {
        for (const TokenId t : g.tokens[k]) p.tokens.push_back(utf8::replace_invalid(tokenizer_.decode({t})));
        p.logprobs = g.logprobs[k];
      }
      out.push_back(std::move(p));
    }
    return out;
  }

private:
  // Meta's text of a row: its tokens decoded; cut exactly before a stop string when one ended it.
  std::string generated_text(const GenerationOutput& g, std::size_t k, const GenerateOptions& o,
                             const std::vector<TokenId>& prompt) const {
    if (std::find(o.stop.begin(), o.stop.end(), g.stopped_by[k]) == o.stop.end() || g.stopped_by[k].empty()) {
      return utf8::replace_invalid(tokenizer_.decode(g.tokens[k]));
    }
    return (o.echo ? utf8::replace_invalid(tokenizer_.decode(prompt)) : std::string()) + g.text[k];
  }

  // forward() of tokens[:, from:to] for every row.
  Tensor<float> forward_rows(const std::vector<std::vector<TokenId>>& tokens, int from, int to, Logits which) {
    std::vector<TokenId> flat;
    flat.reserve(tokens.size() * static_cast<std::size_t>(to - from));
    for (const auto& row : tokens) flat.insert(flat.end(), row.begin() + from, row.begin() + to);
    return model_.forward(flat, static_cast<int>(tokens.size()), from, which);
  }

  // If `text` contains a stop string, cuts it there and names it in `stopped_by`.
  static bool check_stop_strings(const std::vector<std::string>& stop, std::string& text, std::string& stopped_by) {
    std::size_t first = std::string::npos;
    for (const auto& s : stop) {
      if (s.empty()) continue;
      const std::size_t at = text.find(s);
      if (at != std::string::npos && (first == std::string::npos || at < first)) {
        first = at;
        stopped_by = s;
      }
    }
    if (first == std::string::npos) return false;
    text.resize(first);
    return true;
  }

  // Hands on_text what it has not had, holding back a tail that may still become a stop string.
  static bool stream_out(const GenerateOptions& o, int row, const std::string& text, std::size_t& streamed, bool final) {
    if (!o.on_text) return true;
    std::size_t safe = text.size();
    if (!final) {
      for (const auto& s : o.stop) {
        for (std::size_t n = std::min(s.size() - 1, text.size()); n > 0; --n) {
          if (text.compare(text.size() - n, n, s, 0, n) == 0) {
            safe = std::min(safe, text.size() - n);
            break;
          }
        }
      }
      // Never split a UTF-8 character.
      while (safe > streamed && safe < text.size() && (static_cast<unsigned char>(text[safe]) & 0xC0) == 0x80) --safe;
    }
    if (safe <= streamed) return true;
    const std::string_view piece(text.data() + streamed, safe - streamed);
    streamed = safe;
    return o.on_text(row, piece);
  }

  Model model_;
  Tokenizer tokenizer_;
  Rng rng_;
  std::uint64_t cache_epoch_ = 0;
};

}  // namespace llama3

#pragma once
// ChatSession: a multi-turn conversation that keeps the KV cache of the dialog so far. The conversation's tokens
// are kept as the model saw them (the replies as generated, not re-tokenized from their text), so each turn
// appends <|eot_id|> where a reply did not end with one, the new user message and the assistant header, and
// prefills only those: a reply costs the new turn's tokens, not the conversation's. When the dialog would pass
// max_seq_len, the oldest messages are dropped (never the system message), the rest is encoded again with the chat
// format and prefilled, and the turn's stats say how many were dropped.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "llama3/chat_format.hpp"
#include "llama3/generation/llama.hpp"
#include "llama3/generation/sampler.hpp"

namespace llama3 {

struct TurnStats {
  int prompt_tokens = 0;    // the whole dialog's prompt
  int reused_tokens = 0;    // of which the KV cache already held this many
  int prefill_tokens = 0;   // and this many were computed
  int generated_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
  int dropped_turns = 0;    // old messages dropped to fit max_seq_len
  LookupStats lookup;       // prompt lookup, when on
  bool interrupted = false; // the stream callback ended the reply
  std::string stopped_by;   // the stop token's text, or "" when max_gen_len or the context ended the reply

  double prefill_tokens_per_second() const { return prefill_seconds > 0 ? prefill_tokens / prefill_seconds : 0; }
  double decode_tokens_per_second() const { return decode_seconds > 0 ? generated_tokens / decode_seconds : 0; }
};

template <class Args = DynamicArgs, class Device = Cpu>
class ChatSession {
public:
  using Clock = std::chrono::steady_clock;

  // max_gen_len: the longest reply; the dialog is trimmed so that a reply of that length always fits.
  explicit ChatSession(Llama<Args, Device>& llama, int max_gen_len = 512, std::optional<std::string> system = {})
      : llama_(&llama), max_gen_len_(max_gen_len) {
    if (system) dialog_.push_back({Role::system, *system});
    if (max_gen_len_ < 1 || max_gen_len_ >= llama.model().params().max_seq_len) {
      throw Error(detail::cat("max_gen_len ", max_gen_len_, " must be between 1 and max_seq_len - 1 (",
                              llama.model().params().max_seq_len - 1, ")"));
    }
  }

  const Dialog& dialog() const noexcept { return dialog_; }
  const std::vector<TokenId>& cached_tokens() const noexcept { return cached_; }
  int max_gen_len() const noexcept { return max_gen_len_; }

  // Prompt-lookup decoding: up to n draft tokens from the conversation verified per pass (0: off). The replies are
  // those of plain decoding, token for token (generation/lookup.hpp).
  void set_lookup(int n) {
    if (n < 0 || n > lookup_max_draft) {
      throw Error(detail::cat("lookup ", n, ": expected 0 (off) to ", lookup_max_draft, " draft tokens"));
    }
    lookup_ = n;
  }
  int lookup() const noexcept { return lookup_; }

  // The conversation as the model sees it: the prompt of the last turn and the reply's tokens.
  const std::vector<TokenId>& tokens() const noexcept { return tokens_; }

  // Forgets the conversation (the system message stays unless replaced).
  void reset() {
    Dialog kept;
    if (!dialog_.empty() && dialog_.front().role == Role::system) kept.push_back(dialog_.front());
    dialog_ = std::move(kept);
    tokens_.clear();
  }
  void set_system(std::string text) {
    if (!dialog_.empty() && dialog_.front().role == Role::system) {
      dialog_.front().content = std::move(text);
    } else {
      dialog_.insert(dialog_.begin(), {Role::system, std::move(text)});
    }
    tokens_.clear();  // encoded again from the dialog; the KV cache keeps what still matches
  }

  // Adds a user message and generates the assistant's reply, streaming it to on_text (return false to stop).
  // When it throws (text that is not UTF-8, a message too long for the context, bad sampling parameters...), the
  // conversation is as it was before the call, and the next say() goes on from there.
  std::string say(const std::string& user, const SamplingParams& sampling, TurnStats* stats_out = nullptr,
                  const std::function<bool(std::string_view)>& on_text = nullptr) {
    Dialog before = dialog_;
    try {
      return say_or_throw(user, sampling, stats_out, on_text);
    } catch (...) {
      dialog_ = std::move(before);
      throw;
    }
  }

private:
  std::string say_or_throw(const std::string& user, const SamplingParams& sampling, TurnStats* stats_out,
                           const std::function<bool(std::string_view)>& on_text) {
    sampling.validate();
    TurnStats stats;
    dialog_.push_back({Role::user, user});
    const ChatFormat format(llama_->tokenizer());
    const int max_seq_len = llama_->model().params().max_seq_len;
    const TokenId eot = llama_->tokenizer().special_token("<|eot_id|>");
    std::vector<TokenId> prompt;
    if (tokens_.empty()) {
      prompt = format.encode_dialog_prompt(dialog_);
    } else {
      prompt = tokens_;
      if (prompt.back() != eot) prompt.push_back(eot);  // close a reply cut short
      const auto message = format.encode_message(dialog_.back());
      const auto header = format.encode_header({Role::assistant, ""});
      prompt.insert(prompt.end(), message.begin(), message.end());
      prompt.insert(prompt.end(), header.begin(), header.end());
    }
    while (static_cast<int>(prompt.size()) + max_gen_len_ > max_seq_len) {
      // Drop the oldest message after the system message, but never the new one.
      const std::size_t first = (!dialog_.empty() && dialog_.front().role == Role::system) ? 1 : 0;
      if (dialog_.size() - first <= 1) {
        throw Error(detail::cat("the message takes ", prompt.size(), " tokens; with max_gen_len ", max_gen_len_,
                                " it cannot fit max_seq_len ", max_seq_len));
      }
      dialog_.erase(dialog_.begin() + static_cast<std::ptrdiff_t>(first));
      ++stats.dropped_turns;
      prompt = format.encode_dialog_prompt(dialog_);
    }

    // The longest prefix the KV cache holds (nothing if generate() has used the cache since).
    if (epoch_ != llama_->cache_epoch()) cached_.clear();
    std::size_t reuse = 0;
    while (reuse < cached_.size() && reuse < prompt.size() - 1 && cached_[reuse] == prompt[reuse]) ++reuse;
    stats.prompt_tokens = static_cast<int>(prompt.size());
    stats.reused_tokens = static_cast<int>(reuse);
    stats.prefill_tokens = static_cast<int>(prompt.size() - reuse);

    auto& model = llama_->model();
    const int vocab = model.params().vocab_size;
    auto t0 = Clock::now();
    cached_.resize(reuse);  // what the cache still holds should the prefill fail half way
    Tensor<float> logits = model.forward(std::span(prompt).subspan(reuse), static_cast<int>(reuse), Logits::last);
    stats.prefill_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    cached_ = prompt;
    epoch_ = llama_->cache_epoch();

    // A stream of randomness per turn: the same seed gives the same conversation, not the same draws every turn.
    SamplingParams turn_sampling = sampling;
    turn_sampling.seed = sampling.seed + 0x9E3779B97F4A7C15ull * turns_++;
    SamplerChain chain = SamplerChain::from(turn_sampling);
    StreamDecoder stream(llama_->tokenizer());
    const auto& stop = llama_->tokenizer().stop_tokens();
    std::vector<TokenId> reply;
    std::string text;
    std::vector<TokenId> sequence = prompt;
    t0 = Clock::now();
    const auto end = std::min<std::size_t>(prompt.size() + static_cast<std::size_t>(max_gen_len_),
                                           static_cast<std::size_t>(max_seq_len));
    decode_sequence(
        sequence, logits.data(), vocab, end, lookup_, chain,
        [&](std::span<const TokenId> batch, int start_pos) { return model.forward(batch, start_pos, Logits::all); },
        [&](TokenId next, const float*) {
          ++stats.generated_tokens;
          if (std::find(stop.begin(), stop.end(), next) != stop.end()) {
            stats.stopped_by = std::string(llama_->tokenizer().token_to_piece(next));
            return false;
          }
          reply.push_back(next);
          const std::string piece = stream.push(next);
          text += piece;
          if (on_text && !piece.empty() && !on_text(piece)) {
            stats.interrupted = true;
            return false;
          }
          return true;
        },
        &stats.lookup);
    tokens_ = sequence;
    cached_.assign(sequence.begin(), sequence.end() - 1);  // the last token drawn was never run through the model
    stats.decode_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    const std::string rest = stream.finish();
    text += rest;
    if (on_text && !rest.empty() && !stats.interrupted) on_text(rest);
    dialog_.push_back({Role::assistant, text});
    if (stats_out) *stats_out = stats;
    return text;
  }

  Llama<Args, Device>* llama_;
  int max_gen_len_;
  Dialog dialog_;
  std::vector<TokenId> tokens_;  // the conversation so far, as the model saw it (empty: encode the dialog)
  std::vector<TokenId> cached_;  // the tokens whose keys and values are in row 0 of the KV cache
  std::uint64_t epoch_ = ~std::uint64_t{0};
  std::uint64_t turns_ = 0;
  int lookup_ = 0;
};

}  // namespace llama3

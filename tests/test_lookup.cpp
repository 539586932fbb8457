// Prompt-lookup decoding: the proposal, and the promise that it changes the speed and nothing else (the same
// tokens as plain decoding, greedy and sampled, in generate() and in a chat session).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "llama3/generation/llama.hpp"
#include "llama3/generation/lookup.hpp"
#include "llama3/generation/session.hpp"
#include "llama3/model/quantize.hpp"
#include "llama3/model/synthetic.hpp"
#include "support/small_model.hpp"
#include "support/test_data.hpp"

using namespace llama3;
using Ids = std::vector<TokenId>;

namespace {

Llama<> small_llama(DType dtype, int max_seq_len = 320) {
  Checkpoint c = dtype == DType::f32 ? synthetic_checkpoint<float>(test::small_llama3_params(max_seq_len, 2), 11)
                                     : synthetic_checkpoint<bf16>(test::small_llama3_params(max_seq_len, 2), 11);
  if (dtype == DType::q8_0 || dtype == DType::q4_0) quantize_weights(c.weights, c.params, dtype);
  return Llama<>(Transformer<>(std::move(c), 2), test::llama3_tokenizer());
}

// A prompt that quotes itself: what prompt lookup is for.
std::vector<TokenId> repetitive_prompt(const Tokenizer& tok) {
  const std::string code = "for (int i = 0; i < n; ++i) { sum += x[i] * w[i]; }\n";
  return tok.encode("Rewrite this loop:\n" + code + code + "Answer:\n" + code, true, false);
}

}  // namespace

TEST_CASE("propose_lookup continues the most recent occurrence of the longest matching n-gram", "[lookup]") {
  // context ... 5 6 7 | 9 ... 6 7 | 8 8 ... 6 7: the 2-gram "6 7" last occurred before "8 8".
  const Ids context{1, 5, 6, 7, 9, 2, 6, 7, 8, 8, 3, 6, 7};
  CHECK(propose_lookup(context, 2) == Ids{8, 8});
  CHECK(propose_lookup(context, 5) == Ids{8, 8, 3, 6, 7});
  CHECK(propose_lookup(context, 9) == Ids{8, 8, 3, 6, 7});  // only what exists
  // The 3-gram "5 6 7" wins over the more recent 2-gram.
  CHECK(propose_lookup(Ids{5, 6, 7, 4, 6, 7, 1, 5, 6, 7}, 2) == Ids{4, 6});
  CHECK(propose_lookup(Ids{1, 2, 3, 4}, 3).empty());  // nothing repeats
  CHECK(propose_lookup(Ids{1, 2, 3, 2}, 3) == Ids{3, 2});  // 1-grams too
  CHECK(propose_lookup(Ids{1, 2, 3, 2}, 3, 3, 2).empty());
  CHECK(propose_lookup(Ids{7}, 3).empty());
  CHECK(propose_lookup(Ids{}, 3).empty());
  CHECK(propose_lookup(context, 0).empty());
}

TEST_CASE("decode_sequence draws every token as plain decoding does, whatever the drafts", "[lookup]") {
  // A toy model over 16 tokens that mostly copies the token 5 positions back, so that drafts are often right and
  // sometimes wrong; its "KV cache" is the context it was given, overwritten as a real one is.
  constexpr int vocab = 16;
  std::vector<TokenId> cache;
  int passes = 0;
  const auto forward = [&](std::span<const TokenId> batch, int start_pos) {
    ++passes;
    REQUIRE(start_pos <= static_cast<int>(cache.size()));
    cache.resize(static_cast<std::size_t>(start_pos));
    Tensor<float> out({static_cast<std::int64_t>(batch.size()), vocab});
    for (std::size_t j = 0; j < batch.size(); ++j) {
      cache.push_back(batch[j]);
      const std::size_t n = cache.size();
      for (int t = 0; t < vocab; ++t) out.row(static_cast<std::int64_t>(j))[t] = static_cast<float>((t * 7 + n) % 5) * 0.3f;
      if (n >= 5) out.row(static_cast<std::int64_t>(j))[cache[n - 5]] += 3.0f;
    }
    return out;
  };
  const Ids prompt{1, 2, 3, 4, 5, 1, 2, 3};
  for (const float temperature : {0.0f, 1.0f}) {
    for (std::uint64_t seed = 1; seed <= 40; ++seed) {
      SamplingParams sp;
      sp.temperature = temperature;
      sp.top_p = 1.0f;
      sp.seed = seed;
      std::vector<Ids> runs;
      std::vector<int> pass_counts;
      for (const int lookup : {0, 1, 3, 7}) {
        cache = prompt;
        passes = 0;
        Tensor<float> first = forward(std::span<const TokenId>(prompt).last(1), static_cast<int>(prompt.size()) - 1);
        SamplerChain chain = SamplerChain::from(sp);
        Ids tokens = prompt;
        LookupStats stats;
        decode_sequence(tokens, first.data(), vocab, 60, lookup, chain, forward,
                        [](TokenId, const float*) { return true; }, &stats);
        REQUIRE(tokens.size() == 60);
        CHECK(stats.accepted <= stats.drafted);
        if (lookup == 0) CHECK(stats.drafted == 0);
        runs.push_back(tokens);
        pass_counts.push_back(passes);
      }
      INFO("temperature " << temperature << " seed " << seed);
      for (std::size_t r = 1; r < runs.size(); ++r) REQUIRE(runs[r] == runs[0]);
      CHECK(pass_counts[3] < pass_counts[0]);  // the copying model accepts drafts: fewer passes
    }
  }
}

TEST_CASE("generate with prompt lookup gives plain decoding's tokens, greedy and sampled", "[lookup][generation]") {
  for (const DType dtype : {DType::f32, DType::bf16, DType::q4_0}) {
    INFO(dtype_name(dtype));
    Llama<> llama = small_llama(dtype);
    const auto prompt = repetitive_prompt(llama.tokenizer());
    for (const float temperature : {0.0f, 1.0f}) {
      INFO("temperature " << temperature);
      GenerateOptions plain;
      plain.sampling.temperature = temperature;
      plain.sampling.top_k = 2;  // random, yet repetitive enough for drafts to be accepted
      plain.sampling.seed = 5;
      plain.logprobs = true;
      const GenerationOutput expected = llama.generate({prompt}, 120, plain);
      REQUIRE(expected.tokens[0].size() == 120);
      int accepted = 0;
      for (const int lookup : {1, 4, lookup_max_draft}) {
        GenerateOptions o = plain;
        o.lookup = lookup;
        const GenerationOutput got = llama.generate({prompt}, 120, o);
        INFO("lookup " << lookup);
        REQUIRE(got.tokens == expected.tokens);
        CHECK(got.text == expected.text);
        REQUIRE(got.logprobs[0].size() == expected.logprobs[0].size());
        for (std::size_t i = 0; i < got.logprobs[0].size(); ++i) CHECK(got.logprobs[0][i] == expected.logprobs[0][i]);
        CHECK(got.lookup.accepted <= got.lookup.drafted);
        CHECK(got.lookup.passes + got.lookup.accepted == 119);  // the first token comes from the prefill
        accepted += got.lookup.accepted;
      }
      CHECK(accepted > 0);  // the drafts were exercised, not only proposed
    }
  }
}

TEST_CASE("prompt lookup keeps stop strings, streaming, echo and the context limit", "[lookup][generation]") {
  Llama<> llama = small_llama(DType::f32, 96);
  const auto prompt = repetitive_prompt(llama.tokenizer());
  GenerateOptions plain;
  plain.sampling.temperature = 0;
  plain.echo = true;
  const GenerationOutput full = llama.generate({prompt}, 200, plain);  // cut by max_seq_len 96
  REQUIRE(full.tokens[0].size() == 96);
  const std::string stop = full.text[0].substr(full.text[0].size() / 2, 3);
  plain.stop = {stop};
  std::string streamed_plain, streamed_lookup;
  plain.on_text = [&](int, std::string_view piece) {
    streamed_plain += piece;
    return true;
  };
  const GenerationOutput expected = llama.generate({prompt}, 200, plain);
  GenerateOptions o = plain;
  o.lookup = 5;
  o.on_text = [&](int, std::string_view piece) {
    streamed_lookup += piece;
    return true;
  };
  const GenerationOutput got = llama.generate({prompt}, 200, o);
  CHECK(got.tokens == expected.tokens);
  CHECK(got.text == expected.text);
  CHECK(got.stopped_by == expected.stopped_by);
  CHECK(streamed_lookup == streamed_plain);
  CHECK(full.text[0].find(got.text[0]) == 0);

  o.lookup = lookup_max_draft + 1;
  CHECK_THROWS_WITH(llama.generate({prompt}, 10, o), Catch::Contains("lookup 8"));
}

TEST_CASE("a chat session with prompt lookup replies as one without", "[lookup][session]") {
  Llama<> a = small_llama(DType::bf16, 256), b = small_llama(DType::bf16, 256);
  ChatSession<> plain(a, 40, "Repeat what you are told."), lookup(b, 40, "Repeat what you are told.");
  lookup.set_lookup(6);
  CHECK_THROWS(lookup.set_lookup(9));
  SamplingParams sp;
  sp.temperature = 1.0f;
  sp.top_k = 2;
  sp.seed = 3;
  int accepted = 0;
  for (const char* message : {"for (int i = 0; i < n; ++i) sum += x[i];", "Again: for (int i = 0; i < n; ++i)",
                              "And once more, the whole loop.", "Tell me a story about loops and loops."}) {
    TurnStats s1, s2;
    const std::string r1 = plain.say(message, sp, &s1);
    const std::string r2 = lookup.say(message, sp, &s2);
    INFO(message);
    CHECK(r1 == r2);
    CHECK(s1.generated_tokens == s2.generated_tokens);
    CHECK(s1.dropped_turns == s2.dropped_turns);
    CHECK(plain.tokens() == lookup.tokens());
    accepted += s2.lookup.accepted;
  }
  CHECK(accepted > 0);
}

TEST_CASE("a random model rewired by make_quoting quotes its text; prompt lookup takes every draft", "[lookup]") {
  // What llama3-bench --synthetic --quote measures prompt lookup on: check that the model does quote.
  Checkpoint c = synthetic_checkpoint<float>(test::small_llama3_params(128), 5);
  Ids text;
  for (int i = 0; i < 24; ++i) text.push_back((i * 104729 + 7) % 128256);
  make_quoting<float>(c, text);
  CHECK_FALSE(c.params.tie_embeddings);
  Transformer<> model(std::move(c), 2);
  Ids prompt = text;
  prompt.insert(prompt.end(), text.begin(), text.begin() + 5);
  for (const int lookup : {0, 4}) {
    INFO("lookup " << lookup);
    const Tensor<float> first = model.forward(prompt, 0, Logits::last);
    SamplingParams greedy;
    greedy.temperature = 0;
    SamplerChain chain = SamplerChain::from(greedy);
    Ids tokens = prompt;
    LookupStats stats;
    decode_sequence(tokens, first.data(), 128256, 100, lookup, chain,
                    [&](std::span<const TokenId> batch, int start) { return model.forward(batch, start, Logits::all); },
                    [](TokenId, const float*) { return true; }, &stats);
    REQUIRE(tokens.size() == 100);
    for (std::size_t i = prompt.size(); i < tokens.size(); ++i) REQUIRE(tokens[i] == text[i % text.size()]);
    if (lookup > 0) {
      CHECK(stats.drafted > 40);
      CHECK(stats.accepted == stats.drafted);
    }
  }
}

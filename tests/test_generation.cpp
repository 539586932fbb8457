// Generation: Meta's generate() loop on the fixtures (greedy continuations, ragged batches, logprobs, echo, the
// max_seq_len edges), stop tokens and strings, streaming, text/chat completion, Llama::build, seeds and the chat
// session's reuse of the KV cache (its logits against a full recompute).
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "llama3/generation/llama.hpp"
#include "llama3/generation/session.hpp"
#include "llama3/io/hf_writer.hpp"
#include "llama3/model/synthetic.hpp"
#include "support/checkpoint_writer.hpp"
#include "support/gguf_model.hpp"
#include "support/model_fixtures.hpp"
#include "support/small_model.hpp"
#include "support/test_data.hpp"

using namespace llama3;
using test::max_abs_diff;

namespace {

// A fixture model (vocabulary of 512) with Meta's tokenizer: its stop tokens lie outside the vocabulary, so rows
// run to max_gen_len, and its ids below 512 decode to text.
Llama<> fixture_llama(const test::ModelFixture& f, const char* format, int max_batch_size = 1, int max_seq_len = 0) {
  auto model = Transformer<>::load(f.dir / format, {.max_seq_len = max_seq_len ? max_seq_len : f.max_seq_len,
                                                    .max_batch_size = max_batch_size}, 2);
  return Llama<>(std::move(model), test::llama3_tokenizer());
}

ModelParams small_params(int max_seq_len = 256, int max_batch_size = 2) {
  return test::small_llama3_params(max_seq_len, max_batch_size);
}

Llama<> small_llama(unsigned threads = 2, int max_seq_len = 256, int max_batch_size = 2,
                    SpecialTokenNames names = SpecialTokenNames::llama3) {
  return Llama<>(Transformer<>(synthetic_checkpoint<float>(small_params(max_seq_len, max_batch_size), 11), threads),
                 Tokenizer(test::data_path("tokenizer.model"), names));
}

// log_softmax(row)[target] in double.
double log_softmax_at(const float* row, int vocab, TokenId target) {
  const double max = *std::max_element(row, row + vocab);
  double sum = 0;
  for (int i = 0; i < vocab; ++i) sum += std::exp(row[i] - max);
  return row[target] - max - std::log(sum);
}

GenerateOptions greedy() {
  GenerateOptions o;
  o.sampling.temperature = 0;
  return o;
}

}  // namespace

TEST_CASE("greedy generate() reproduces every fixture's greedy continuation, batched and alone", "[generation][fixtures]") {
  for (const std::string& name : test::model_fixture_names()) {
    const test::ModelFixture f = test::load_model_fixture(name);
    for (const char* format : {"meta", "hf"}) {
      INFO(name << " (" << format << ")");
      Llama<> llama = fixture_llama(f, format, static_cast<int>(f.greedy.size()));
      std::vector<std::vector<TokenId>> prompts;
      for (const auto& g : f.greedy) prompts.push_back(f.prompts[static_cast<std::size_t>(g.prompt_index)]);
      const int n = static_cast<int>(f.greedy.front().tokens.size());

      // Meta's signature, temperature 0: a ragged batch (the prompts have different lengths).
      const GenerationOutput batch = llama.generate(prompts, n, /*temperature=*/0.0f);
      REQUIRE(batch.tokens.size() == prompts.size());
      for (std::size_t k = 0; k < prompts.size(); ++k) {
        INFO("prompt " << k << " (" << prompts[k].size() << " tokens), in the batch");
        CHECK(batch.tokens[k] == f.greedy[k].tokens);
        CHECK(batch.stopped_by[k].empty());
      }
      for (std::size_t k = 0; k < prompts.size(); ++k) {
        INFO("prompt " << k << ", alone");
        const GenerationOutput alone = llama.generate({prompts[k]}, n, 0.0f);
        CHECK(alone.tokens[0] == f.greedy[k].tokens);
      }
    }
  }
}

TEST_CASE("logprobs are the log-softmax of the logits at each step, and echo returns the prompt too", "[generation]") {
  const test::ModelFixture f = test::load_model_fixture("tiny-gqa");
  Llama<> llama = fixture_llama(f, "meta", 3);
  const std::vector<std::vector<TokenId>> prompts = {f.prompts[0], f.prompts[1], {7, 8, 9, 10, 11, 12, 13, 14, 15}};
  const int n = 6;
  GenerateOptions o = greedy();
  o.logprobs = true;
  o.echo = true;
  const GenerationOutput echoed = llama.generate(prompts, n, o);
  o.echo = false;
  const GenerationOutput plain = llama.generate(prompts, n, o);

  Transformer<> reference = Transformer<>::load(f.dir / "meta", {.max_seq_len = f.max_seq_len}, 1);
  const int vocab = reference.params().vocab_size;
  double worst = 0;
  for (std::size_t k = 0; k < prompts.size(); ++k) {
    INFO("row " << k);
    const auto& seq = echoed.tokens[k];
    REQUIRE(seq.size() == prompts[k].size() + n);
    CHECK(std::equal(prompts[k].begin(), prompts[k].end(), seq.begin()));
    REQUIRE(echoed.logprobs[k].size() == seq.size());
    CHECK(echoed.logprobs[k][0] == 0.0f);  // nothing predicts the first token (Meta leaves it 0)
    // One prefill of the whole sequence, without the KV cache's step-by-step path.
    const Tensor<float> all = reference.forward(seq, 0, Logits::all);
    for (std::size_t t = 1; t < seq.size(); ++t) {
      const float* row = all.data() + (t - 1) * vocab;
      const double expected = log_softmax_at(row, vocab, seq[t]);
      worst = std::max(worst, std::fabs(expected - echoed.logprobs[k][t]));
      if (t >= prompts[k].size()) {  // greedy picks the most probable token: its logprob is the row's maximum
        const auto best = static_cast<TokenId>(std::max_element(row, row + vocab) - row);
        CHECK(echoed.logprobs[k][t] == Approx(log_softmax_at(row, vocab, best)).margin(1e-4));
      }
    }
    // Without echo: the generated tokens and their logprobs only, the same values.
    CHECK(plain.tokens[k] == std::vector<TokenId>(seq.begin() + static_cast<std::ptrdiff_t>(prompts[k].size()), seq.end()));
    CHECK(plain.logprobs[k] == std::vector<float>(echoed.logprobs[k].end() - n, echoed.logprobs[k].end()));
  }
  CHECK(worst < 1e-4);
}

TEST_CASE("the max_seq_len and max_batch_size edges", "[generation]") {
  const test::ModelFixture f = test::load_model_fixture("tiny-gqa");
  Llama<> llama = fixture_llama(f, "meta", 2, /*max_seq_len=*/16);
  std::vector<TokenId> p15(15), p16(16), p3 = {5, 6, 7}, p6 = {10, 11, 12, 13, 14, 15};
  std::iota(p15.begin(), p15.end(), 1);
  std::iota(p16.begin(), p16.end(), 1);

  // total_len = min(max_seq_len, max_gen_len + longest prompt): a 15-token prompt has room for one token.
  CHECK(llama.generate({p15}, 10, greedy()).tokens[0].size() == 1);
  GenerateOptions echo = greedy();
  echo.echo = true;
  CHECK(llama.generate({p15}, 10, echo).tokens[0].size() == 16);
  REQUIRE_THROWS_WITH(llama.generate({p16}, 1, greedy()), Catch::Contains("prompt 0 has 16 tokens") &&
                                                            Catch::Contains("max_seq_len 16"));
  REQUIRE_THROWS_WITH(llama.generate({p3, p3, p3}, 1, greedy()), Catch::Contains("3 prompts") &&
                                                                   Catch::Contains("max_batch_size 2"));
  REQUIRE_THROWS_WITH(llama.generate({p3, {}}, 1, greedy()), Catch::Contains("prompt 1 is empty"));
  REQUIRE_THROWS_AS(llama.generate({p3}, -1, greedy()), Error);

  // max_gen_len 0: nothing generated (the prompt when echo), even for a ragged batch.
  const auto none = llama.generate({p3, p6}, 0, echo);
  CHECK(none.tokens[0] == p3);
  CHECK(none.tokens[1] == p6);
  CHECK(llama.generate({p3, p6}, 0, greedy()).tokens[0].empty());

  // Ragged: each row gets max_gen_len tokens, the short row's decoding starts while the long one is in its prompt.
  const auto both = llama.generate({p3, p6}, 4, greedy());
  CHECK(both.tokens[0].size() == 4);
  CHECK(both.tokens[1].size() == 4);
  CHECK(both.tokens[0] == llama.generate({p3}, 4, greedy()).tokens[0]);
  CHECK(both.tokens[1] == llama.generate({p6}, 4, greedy()).tokens[0]);
  // The context limit cuts the longer row first: total_len 16 leaves the 6-token prompt 10.
  const auto cut = llama.generate({p3, p6}, 50, greedy());
  CHECK(cut.tokens[0].size() == 13);
  CHECK(cut.tokens[1].size() == 10);
}

TEST_CASE("stop tokens end a row, and Meta cuts the output before them", "[generation]") {
  Llama<> llama = small_llama(2, 128, 2, SpecialTokenNames::llama3_1);
  const Tokenizer& tok = llama.tokenizer();
  const std::vector<TokenId> a = tok.encode("Once upon a time", true, false);
  const std::vector<TokenId> b = tok.encode("The quick brown fox jumps over", true, false);
  const auto free_run = llama.generate({a, b}, 8, greedy());
  REQUIRE(free_run.tokens[0].size() == 8);

  for (const char* stop : {"<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"}) {
    INFO(stop);
    const TokenId stop_id = tok.special_token(stop);
    // Force the stop token as row a's third token and row b's fifth.
    GenerateOptions o = greedy();
    o.sampling.logits_processor = [&](std::span<TokenCandidate> c, std::span<const TokenId> context) {
      const bool row_a = context.size() > 1 && context[1] == a[1];
      const std::size_t at = row_a ? a.size() + 2 : b.size() + 4;
      if (context.size() == at) c[static_cast<std::size_t>(stop_id)].logit = 1e9f;
    };
    const auto out = llama.generate({a, b}, 8, o);
    CHECK(out.tokens[0] == std::vector<TokenId>(free_run.tokens[0].begin(), free_run.tokens[0].begin() + 2));
    CHECK(out.tokens[1] == std::vector<TokenId>(free_run.tokens[1].begin(), free_run.tokens[1].begin() + 4));
    CHECK(out.stopped_by[0] == stop);
    CHECK(out.stopped_by[1] == stop);
  }
}

TEST_CASE("streaming hands out complete UTF-8 as it comes, stops on false, and honours stop strings", "[generation]") {
  Llama<> llama = small_llama();
  const std::vector<TokenId> prompt = llama.tokenizer().encode("Hello", true, false);
  const int n = 40;
  std::string streamed;
  std::vector<std::string> pieces;
  GenerateOptions o = greedy();
  o.on_text = [&](int row, std::string_view text) {
    CHECK(row == 0);
    CHECK(utf8::is_valid(text));
    pieces.emplace_back(text);
    streamed += text;
    return true;
  };
  const auto full = llama.generate({prompt}, n, o);
  REQUIRE(full.tokens[0].size() == static_cast<std::size_t>(n));
  const std::string text = utf8::replace_invalid(llama.tokenizer().decode(full.tokens[0]));
  CHECK(streamed == text);
  CHECK(pieces.size() > 5);

  // Returning false ends the row at once.
  int calls = 0;
  o.on_text = [&](int, std::string_view) { return ++calls < 3; };
  const auto stopped = llama.generate({prompt}, n, o);
  CHECK(calls == 3);
  CHECK(stopped.tokens[0].size() < full.tokens[0].size());
  CHECK(std::equal(stopped.tokens[0].begin(), stopped.tokens[0].end(), full.tokens[0].begin()));

  // A stop string from the middle of the text: the stream ends just before it and never shows a part of it.
  const std::string stop = text.substr(text.size() / 2, 4);
  const std::size_t at = text.find(stop);
  streamed.clear();
  o.stop = {stop, "a string that never comes"};
  o.on_text = [&](int, std::string_view t) {
    streamed += t;
    return true;
  };
  const auto s = llama.generate({prompt}, n, o);
  CHECK(streamed == text.substr(0, at));
  CHECK(s.stopped_by[0] == stop);
  CHECK(s.tokens[0].size() < full.tokens[0].size());
  CHECK(s.text[0] == text.substr(0, at));
  // The tokens are those wholly before the stop string.
  const std::string kept = utf8::replace_invalid(llama.tokenizer().decode(s.tokens[0]));
  CHECK(kept.size() <= at);
  CHECK(text.compare(0, kept.size(), kept) == 0);
  const std::string one_more = utf8::replace_invalid(llama.tokenizer().decode(
      std::vector<TokenId>(full.tokens[0].begin(), full.tokens[0].begin() + static_cast<std::ptrdiff_t>(s.tokens[0].size()) + 1)));
  CHECK(one_more.size() > at);

  // A held-back tail that could have begun a stop string is still delivered when the row ends otherwise.
  streamed.clear();
  o.stop = {text.substr(text.size() - 1) + "never"};
  const auto tail = llama.generate({prompt}, n, o);
  CHECK(tail.stopped_by[0].empty());
  CHECK(streamed == text);
  CHECK(tail.text[0] == text);

  // text_completion gives the exact text before the stop string.
  GenerateOptions c = greedy();
  c.stop = {stop};
  CHECK(llama.text_completion({"Hello"}, n, c)[0].generation == text.substr(0, at));
}

TEST_CASE("text_completion and chat_completion are generate() on Meta's prompts", "[generation]") {
  Llama<> llama = small_llama();
  const Tokenizer& tok = llama.tokenizer();

  const auto completions = llama.text_completion({"I believe the meaning of life is", "Hi"}, 0.0f, 0.9f, 12, true);
  REQUIRE(completions.size() == 2);
  const auto direct = llama.generate({tok.encode("I believe the meaning of life is", true, false)}, 12, greedy());
  CHECK(completions[0].generation == utf8::replace_invalid(tok.decode(direct.tokens[0])));
  CHECK(completions[0].tokens.size() == 12);
  CHECK(completions[0].logprobs.size() == 12);

  const Dialog dialog = {{Role::system, "Answer in French."}, {Role::user, "What is the capital of France?"}};
  const auto chat = llama.chat_completion({dialog}, 0.0f, 0.9f, 10);
  const std::vector<TokenId> prompt = ChatFormat(tok).encode_dialog_prompt(dialog);
  CHECK(std::count(prompt.begin(), prompt.end(), tok.bos_id()) == 1);
  const auto expected = llama.generate({prompt}, 10, greedy());
  CHECK(chat[0].generation.role == Role::assistant);
  CHECK(chat[0].generation.content == utf8::replace_invalid(tok.decode(expected.tokens[0])));

  // max_gen_len defaults to max_seq_len - 1, cut by the context: the reply fills what is left.
  Llama<> short_ctx = small_llama(2, 40, 1);
  const auto filled = short_ctx.text_completion({"Hi"}, 0.0f, 0.9f, std::nullopt, true);
  CHECK(filled[0].tokens.size() == 40 - tok.encode("Hi", true, false).size());
}

TEST_CASE("a seed makes sampling reproducible across runs and thread counts", "[generation]") {
  const std::vector<TokenId> prompt = test::llama3_tokenizer().encode("The weather today", true, false);
  const auto run = [&](unsigned threads, std::uint64_t seed) {
    Llama<> llama = small_llama(threads);
    GenerateOptions o;
    o.sampling.temperature = 1.0f;
    o.sampling.top_p = 0.95f;
    o.sampling.seed = seed;
    return llama.generate({prompt, prompt}, 24, o).tokens;
  };
  const auto one = run(1, 5);
  CHECK(one == run(1, 5));
  CHECK(one == run(2, 5));
  CHECK(one != run(2, 6));
  CHECK(one[0] != one[1]);  // each row has its own stream

  // Meta's signature draws the seed from build()'s generator: reproducible from the seed, new at each call.
  Llama<> x = small_llama(), y = small_llama();
  const auto x1 = x.generate({prompt}, 16, 1.0f, 0.95f).tokens;
  CHECK(x1 == y.generate({prompt}, 16, 1.0f, 0.95f).tokens);
  CHECK(x1 != x.generate({prompt}, 16, 1.0f, 0.95f).tokens);
}

TEST_CASE("Llama::build loads a folder with its tokenizer, and rejects one that does not belong", "[generation]") {
  const std::filesystem::path dir = test::temp_dir("llama-build");
  Checkpoint c = synthetic_checkpoint<bf16>(small_params(), 3);
  io::write_hf_checkpoint(dir, c);
  CHECK_THROWS_WITH(Llama<>::build(dir, "", 64, 1),
                    Catch::Contains("no tokenizer.model or tokenizer.json") && Catch::Contains("llama-build"));
  std::filesystem::copy_file(test::data_path("tokenizer.model"), dir / "tokenizer.model");
  Llama<> llama = Llama<>::build(dir, "", 64, 1);
  CHECK(llama.model().params().max_seq_len == 64);
  CHECK(llama.text_completion({"Hello"}, 0.0f, 0.9f, 4)[0].generation.size() > 0);

  const test::ModelFixture f = test::load_model_fixture("tiny-gqa");
  CHECK_THROWS_WITH(Llama<>::build(f.dir / "meta", test::data_path("tokenizer.model"), 64, 1),
                    Catch::Contains("128256 tokens") && Catch::Contains("512"));
}

TEST_CASE("Llama::build runs a .gguf model with the tokenizer it carries", "[generation][gguf]") {
  const std::filesystem::path dir = test::temp_dir("llama-build-gguf");
  Checkpoint c = synthetic_checkpoint<bf16>(small_params(), 3);
  const test::GgufVocab vocab(test::llama3_tokenizer());
  std::ofstream(dir / "with-vocab.gguf", std::ios::binary) << test::gguf_model(c, false, &vocab);
  std::filesystem::create_directories(dir / "bare");
  std::ofstream(dir / "bare" / "model.gguf", std::ios::binary) << test::gguf_model(c, false);

  CHECK(find_tokenizer(dir / "with-vocab.gguf") == dir / "with-vocab.gguf");
  Llama<> from_gguf = Llama<>::build(dir / "with-vocab.gguf", "", 64, 1);
  // The same weights in memory (in GGUF's, which is Meta's, RoPE layout) with tokenizer.model.
  Llama<> reference(Transformer<>(synthetic_checkpoint<bf16>(small_params(64, 1), 3)), test::llama3_tokenizer());
  const Dialog dialog{{Role::user, "What is the capital of France?"}};
  const auto a = from_gguf.chat_completion({dialog}, 0.0f, 0.9f, 12);
  const auto b = reference.chat_completion({dialog}, 0.0f, 0.9f, 12);
  CHECK(!a[0].generation.content.empty());
  CHECK(a[0].generation.content == b[0].generation.content);

  // A GGUF without a tokenizer: one beside it, or an error that says what to do.
  CHECK_THROWS_WITH(Llama<>::build(dir / "bare" / "model.gguf", "", 64, 1),
                    Catch::Contains("model.gguf") && Catch::Contains("has no tokenizer"));
  std::filesystem::copy_file(test::data_path("tokenizer.model"), dir / "bare" / "tokenizer.model");
  CHECK(find_tokenizer(dir / "bare" / "model.gguf") == dir / "bare" / "tokenizer.model");
  CHECK(Llama<>::build(dir / "bare" / "model.gguf", "", 64, 1).chat_completion({dialog}, 0.0f, 0.9f, 12)[0]
            .generation.content == b[0].generation.content);
}

TEST_CASE("a chat session prefills only the new turn, and its logits equal a full recompute", "[generation][session]") {
  Llama<> llama = small_llama(2, 160, 1);
  // Record what the model gave at every step: the context so far and the logits.
  struct Step {
    std::vector<TokenId> context;
    std::vector<float> logits;
  };
  std::vector<Step> steps;
  SamplingParams sampling;
  sampling.temperature = 0;
  sampling.logits_processor = [&](std::span<TokenCandidate> c, std::span<const TokenId> context) {
    Step s{{context.begin(), context.end()}, {}};
    for (const auto& t : c) s.logits.push_back(t.logit);
    steps.push_back(std::move(s));
  };
  ChatSession<> session(llama, /*max_gen_len=*/12, "You are terse.");

  TurnStats first, second;
  const std::string reply1 = session.say("Hello there, how are you?", sampling, &first);
  CHECK(first.reused_tokens == 0);
  CHECK(first.prefill_tokens == first.prompt_tokens);
  CHECK(first.generated_tokens > 0);
  const auto after_first = session.tokens();
  const std::string reply2 = session.say("Tell me more.", sampling, &second);
  // The second turn reuses the whole first conversation and prefills only the new message and header.
  CHECK(second.reused_tokens >= static_cast<int>(after_first.size()) - 1);
  CHECK(second.prefill_tokens == second.prompt_tokens - second.reused_tokens);
  CHECK(second.prefill_tokens < 20);
  CHECK(session.dialog().size() == 5);
  CHECK(session.dialog()[4].content == reply2);

  // Every step, first turn and second, against one prefill of its whole context in a fresh model.
  Transformer<> fresh(synthetic_checkpoint<float>(small_params(160, 1), 11), 1);
  double worst = 0;
  REQUIRE(steps.size() == static_cast<std::size_t>(first.generated_tokens + second.generated_tokens));
  for (const Step& s : steps) {
    const Tensor<float> logits = fresh.forward(s.context, 0, Logits::last);
    worst = std::max(worst, max_abs_diff(logits.data(), s.logits));
  }
  CHECK(worst < 1e-4);

  // Overflow: turns until the dialog passes max_seq_len; the oldest messages go, the system message stays.
  int dropped = 0;
  for (int turn = 0; turn < 12 && dropped == 0; ++turn) {
    TurnStats s;
    session.say("Another question, number " + std::to_string(turn) + ", please answer it.", sampling, &s);
    dropped = s.dropped_turns;
    CHECK(static_cast<int>(session.tokens().size()) <= 160);
  }
  CHECK(dropped > 0);
  CHECK(session.dialog().front().role == Role::system);
  CHECK(session.dialog().front().content == "You are terse.");
  // The re-prefilled dialog still gives the logits of a full recompute.
  steps.clear();
  TurnStats last;
  session.say("Last one.", sampling, &last);
  REQUIRE(last.generated_tokens > 0);
  REQUIRE(steps.size() == static_cast<std::size_t>(last.generated_tokens));
  for (const Step& s : steps) {
    const Tensor<float> logits = fresh.forward(s.context, 0, Logits::last);
    worst = std::max(worst, max_abs_diff(logits.data(), s.logits));
  }
  CHECK(worst < 1e-4);

  // generate() overwrites the KV cache: the session notices and prefills its dialog again.
  llama.generate({llama.tokenizer().encode("x", true, false)}, 2, greedy());
  TurnStats after;
  steps.clear();
  session.say("And now?", sampling, &after);
  CHECK(after.reused_tokens == 0);
  REQUIRE(after.generated_tokens > 0);
  REQUIRE(steps.size() == static_cast<std::size_t>(after.generated_tokens));
  for (const Step& s : steps) {
    const Tensor<float> logits = fresh.forward(s.context, 0, Logits::last);
    worst = std::max(worst, max_abs_diff(logits.data(), s.logits));
  }
  CHECK(worst < 1e-4);

  // reset() keeps the system message; a message that cannot fit is an error that leaves the dialog as it was.
  session.reset();
  CHECK(session.dialog().size() == 1);
  const auto before = session.dialog();
  std::string huge;
  for (int i = 0; i < 200; ++i) huge += "word ";
  CHECK_THROWS_WITH(session.say(huge, sampling), Catch::Contains("cannot fit max_seq_len 160"));
  CHECK(session.dialog().size() == before.size());
  // So is text that is not UTF-8, and sampling parameters that make no sense; the next turn goes on from here.
  CHECK_THROWS_WITH(session.say("caf\xe9", sampling), Catch::Contains("invalid UTF-8"));
  SamplingParams nan_top_p = sampling;
  nan_top_p.top_p = std::nanf("");
  CHECK_THROWS_WITH(session.say("Hi", nan_top_p), Catch::Contains("top_p"));
  CHECK(session.dialog().size() == before.size());
  TurnStats next;
  session.say("Hi", sampling, &next);
  CHECK(session.dialog().size() == before.size() + 2);
  CHECK(next.generated_tokens > 0);
}

TEST_CASE("chat_completion of several dialogs at once gives each dialog's own reply", "[generation][batch]") {
  Llama<> batch = small_llama(2, 256, 3), alone = small_llama(2, 256, 1);
  const std::vector<Dialog> dialogs = {
      {{Role::system, "Always answer in rhyme."}, {Role::user, "I am going to Paris, what should I see?"}},
      {{Role::user, "Hi!"}},
      {{Role::user, "What is 2 + 2?"}, {Role::assistant, "4."}, {Role::user, "And times 3?"}}};
  const auto together = batch.chat_completion(dialogs, 0.0f, 0.9f, 20);
  REQUIRE(together.size() == 3);
  for (std::size_t k = 0; k < dialogs.size(); ++k) {
    INFO("dialog " << k);
    const auto one = alone.chat_completion({dialogs[k]}, 0.0f, 0.9f, 20);
    CHECK(together[k].generation.role == Role::assistant);
    CHECK(together[k].generation.content == one[0].generation.content);
    CHECK(!together[k].generation.content.empty());
  }
  CHECK(together[0].generation.content != together[1].generation.content);  // each row its own
}

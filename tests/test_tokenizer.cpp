#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <thread>
#include <vector>

#include "llama3/tokenizer.hpp"
#include "llama3/tokenizer/split_pcre2.hpp"
#include "support/test_data.hpp"

using namespace llama3;
using Ids = std::vector<TokenId>;

namespace {
const Tokenizer& tok() { return test::llama3_tokenizer(); }
// The text encoded in one piece, without Meta's chunking.
Ids encode_unchunked(std::string_view text) {
  Ids out;
  split_llama3(text, [&](std::string_view piece) {
    byte_pair_encode(tok().vocabulary(), piece, [&](TokenId t) { out.push_back(t); });
  });
  return out;
}
}  // namespace

TEST_CASE("Meta's reference cases", "[tokenizer]") {
  // From meta-llama/llama3's tokenizer tests.
  const Ids expected = {128000, 2028, 374, 264, 1296, 11914, 13, 128001};
  CHECK(tok().encode("This is a test sentence.", true, true) == expected);
  CHECK(tok().decode(expected) == "<|begin_of_text|>This is a test sentence.<|end_of_text|>");
  CHECK(tok().decode(Ids(expected.begin() + 1, expected.end() - 1)) == "This is a test sentence.");
}

TEST_CASE("special tokens have Meta's names and ids", "[tokenizer]") {
  CHECK(tok().n_words() == 128256);
  CHECK(tok().num_base_tokens() == 128000u);
  CHECK(tok().bos_id() == 128000);
  CHECK(tok().eos_id() == 128001);
  CHECK(tok().special_token("<|reserved_special_token_0|>") == 128002);
  CHECK(tok().special_token("<|reserved_special_token_3|>") == 128005);
  CHECK(tok().special_token("<|start_header_id|>") == 128006);
  CHECK(tok().special_token("<|end_header_id|>") == 128007);
  CHECK(tok().special_token("<|reserved_special_token_4|>") == 128008);
  CHECK(tok().special_token("<|eot_id|>") == 128009);
  CHECK(tok().special_token("<|reserved_special_token_5|>") == 128010);
  CHECK(tok().special_token("<|reserved_special_token_250|>") == 128255);
  CHECK_FALSE(tok().special_id("<|reserved_special_token_251|>"));
  CHECK_FALSE(tok().special_id("<|eom_id|>"));
  CHECK(tok().stop_tokens() == Ids{128001, 128009});
  CHECK(tok().is_special(128000));
  CHECK_FALSE(tok().is_special(127999));
  CHECK_THROWS_WITH(tok().special_token("<|nope|>"), Catch::Contains("<|nope|>"));
}

TEST_CASE("Llama 3.1 names: <|eom_id|> is a stop token", "[tokenizer]") {
  const Tokenizer t = Tokenizer::from_tiktoken(test::read_file(test::data_path("tokenizer.model")), "tokenizer.model",
                                               SpecialTokenNames::llama3_1);
  CHECK(t.special_token("<|finetune_right_pad_id|>") == 128004);
  CHECK(t.special_token("<|step_id|>") == 128005);
  CHECK(t.special_token("<|eom_id|>") == 128008);
  CHECK(t.special_token("<|python_tag|>") == 128010);
  CHECK(t.special_token("<|reserved_special_token_2|>") == 128011);
  CHECK(t.special_token("<|reserved_special_token_246|>") == 128255);
  CHECK(t.stop_tokens() == Ids{128001, 128008, 128009});
  CHECK(t.encode("<|eom_id|>", false, false, SpecialSet::all()) == Ids{128008});
}

TEST_CASE("every tiktoken vector, with the fast scanner and with the PCRE2 reference", "[tokenizer][vectors]") {
  std::size_t n_encode = 0, n_decode = 0;
  for (const auto& v : test::vectors()) {
    INFO("vectors.jsonl line " << v.line);
    switch (v.kind) {
      case test::Vector::encode:
        REQUIRE(tok().encode(v.text, false, false) == v.ids);
        REQUIRE(tok().encode_with(test::pcre2_reference(), v.text, false, false) == v.ids);
        REQUIRE(tok().decode(v.ids) == v.text);
        ++n_encode;
        break;
      case test::Vector::encode_all_special:
        REQUIRE(tok().encode(v.text, false, false, SpecialSet::all()) == v.ids);
        REQUIRE(tok().encode_with(test::pcre2_reference(), v.text, false, false, SpecialSet::all()) == v.ids);
        REQUIRE(tok().decode(v.ids) == v.text);
        ++n_encode;
        break;
      case test::Vector::decode:
        REQUIRE(tok().decode(v.ids) == v.bytes);
        REQUIRE(utf8::replace_invalid(tok().decode(v.ids)) == utf8::replace_invalid(v.bytes));
        if (utf8::is_valid(v.bytes)) REQUIRE(tok().decode(v.ids) == v.text);
        ++n_decode;
        break;
    }
  }
  CHECK(n_encode + n_decode == test::vectors().size());
  CHECK(n_encode > 400);
  CHECK(n_decode > 0);
}

TEST_CASE("special-token text is plain text unless allowed", "[tokenizer][special]") {
  const std::string text = "a<|eot_id|>b";
  const Ids plain = tok().encode(text, false, false);
  CHECK(plain.size() > 3);
  CHECK(std::find(plain.begin(), plain.end(), 128009) == plain.end());
  CHECK(tok().decode(plain) == text);
  CHECK(tok().encode(text, false, false, SpecialSet::all()) == Ids{64, 128009, 65});
  CHECK(tok().encode(text, false, false, {"<|eot_id|>"}) == Ids{64, 128009, 65});
  // Allowing another token does not allow this one.
  CHECK(tok().encode(text, false, false, {"<|begin_of_text|>"}) == plain);
  // BOS/EOS are added around whatever the text holds.
  CHECK(tok().encode("<|begin_of_text|>", true, true, SpecialSet::all()) == Ids{128000, 128000, 128001});
}

TEST_CASE("disallowed special tokens are an error naming the token and its offset", "[tokenizer][special]") {
  CHECK_THROWS_WITH(tok().encode("hi <|eot_id|>", false, false, {}, SpecialSet::all()),
                    Catch::Contains("<|eot_id|>") && Catch::Contains("byte offset 3"));
  CHECK_THROWS_AS(tok().encode("x<|start_header_id|>", false, false, {}, {"<|start_header_id|>"}), Error);
  // "all" disallows only what is not allowed.
  CHECK(tok().encode("<|eot_id|>", false, false, {"<|eot_id|>"}, SpecialSet::all()) == Ids{128009});
  CHECK_THROWS_WITH(tok().encode("<|eot_id|><|begin_of_text|>", false, false, {"<|eot_id|>"}, SpecialSet::all()),
                    Catch::Contains("<|begin_of_text|>"));
  // A disallowed token that is absent is no error.
  CHECK(tok().encode("plain", false, false, {}, SpecialSet::all()) == tok().encode("plain", false, false));
  // Names that are not special tokens are an error, not silently ignored.
  CHECK_THROWS_WITH(tok().encode("x", false, false, {"<|eot|>"}), Catch::Contains("allowed_special"));
  CHECK_THROWS_WITH(tok().encode("x", false, false, {}, {"eot"}), Catch::Contains("disallowed_special"));
}

TEST_CASE("decode(encode(text)) gives the text back", "[tokenizer]") {
  std::mt19937 rng(3);
  for (int i = 0; i < 5000; ++i) {
    const std::string text = test::random_text(rng, 60);
    INFO(detail::quote(text, 400));
    const Ids ids = tok().encode(text, false, false);
    REQUIRE(tok().decode(ids) == text);
    REQUIRE(tok().encode_with(test::pcre2_reference(), text, false, false) == ids);
    const Ids with_special = tok().encode(text, true, true, SpecialSet::all());
    REQUIRE(tok().decode(with_special) == "<|begin_of_text|>" + text + "<|end_of_text|>");
  }
}

TEST_CASE("invalid UTF-8 is rejected with its byte offset", "[tokenizer][errors]") {
  CHECK_THROWS_WITH(tok().encode("abc\xFF", false, false), Catch::Contains("byte offset 3") &&
                                                            Catch::Contains("invalid UTF-8"));
  CHECK_THROWS_WITH(tok().encode("ok \xED\xA0\x80", false, false), Catch::Contains("byte offset 3"));  // surrogate
  CHECK_THROWS_AS(tok().encode("\xC0\xAF", false, false), Error);                                     // overlong
  CHECK_THROWS_AS(tok().encode("truncated \xE4\xB8", false, false), Error);
  // The documented way to encode such text: replace the bad bytes first, as Python's errors="replace" would.
  const std::string fixed = utf8::replace_invalid("abc\xFF");
  CHECK(tok().decode(tok().encode(fixed, false, false)) == "abc\xEF\xBF\xBD");
}

TEST_CASE("ids out of range are an error naming the id and its position", "[tokenizer][errors]") {
  CHECK_THROWS_WITH(tok().decode({9906, 128256}), Catch::Contains("128256") && Catch::Contains("position 1"));
  CHECK_THROWS_WITH(tok().decode({-1}), Catch::Contains("-1"));
  CHECK_THROWS_AS(tok().token_to_piece(200000), Error);
  CHECK(tok().token_to_piece(9906) == "Hello");
  CHECK(tok().token_to_piece(128009) == "<|eot_id|>");
}

TEST_CASE("long inputs follow Meta's chunking", "[tokenizer][long]") {
  SECTION("a run of more than 25,000 equal characters is cut every 25,000") {
    for (const std::string unit : {"a", "1", " "}) {
      const std::string run(25'000, unit[0]);
      const Ids one = tok().encode(run, false, false);
      std::string text;
      Ids expected;
      for (int i = 0; i < 40; ++i) {  // 1 MB
        text += run;
        expected.insert(expected.end(), one.begin(), one.end());
      }
      INFO(detail::quote(unit));
      CHECK(tok().encode(text, false, false) == expected);
      if (unit == "1") CHECK(expected != encode_unchunked(text));  // 25,000 digits are not whole groups of 3
    }
  }
  SECTION("text is cut every 400,000 code points even inside a word") {
    std::string text;
    while (text.size() < 400'000 - 3) text += "hello ";
    text.resize(400'000 - 3);
    text += "wonderful world";  // "wonderful" straddles the cut
    const Ids got = tok().encode(text, false, false);
    Ids expected = tok().encode(text.substr(0, 400'000), false, false);
    const Ids tail = tok().encode(text.substr(400'000), false, false);
    expected.insert(expected.end(), tail.begin(), tail.end());
    CHECK(got == expected);
    CHECK(got != encode_unchunked(text));  // the cut changes the tokens here
  }
  SECTION("the cut counts code points, not bytes") {
    std::string text;
    for (int i = 0; i < 400'001; ++i) text += (i % 7 == 6) ? " " : "\xE4\xB8\xAD";
    const Ids got = tok().encode(text, false, false);
    // 400,000 code points of this text are more bytes than that.
    std::size_t bytes = 0;
    for (int i = 0; i < 400'000; ++i) bytes += (i % 7 == 6) ? 1 : 3;
    Ids expected = tok().encode(text.substr(0, bytes), false, false);
    const Ids tail = tok().encode(text.substr(bytes), false, false);
    expected.insert(expected.end(), tail.begin(), tail.end());
    CHECK(got == expected);
  }
  SECTION("special tokens in long text") {
    std::string text;
    for (int i = 0; i < 30'000; ++i) text += "word <|eot_id|>\n";  // 16 bytes: no cut falls inside a token
    const Ids ids = tok().encode(text, false, false, SpecialSet::all());
    CHECK(std::count(ids.begin(), ids.end(), 128009) == 30'000);
    CHECK(tok().decode(ids) == text);
  }
  SECTION("a special token cut by the chunking is text, as in Meta's reference") {
    // Without whitespace, Meta's splitting cuts every 25,000 characters, through tokens too.
    std::string text;
    for (int i = 0; i < 3'000; ++i) text += "word<|eot_id|>";  // 42,000 bytes: one cut at 25,000
    const Ids ids = tok().encode(text, false, false, SpecialSet::all());
    Ids expected = tok().encode(text.substr(0, 25'000), false, false, SpecialSet::all());
    const Ids tail = tok().encode(text.substr(25'000), false, false, SpecialSet::all());
    expected.insert(expected.end(), tail.begin(), tail.end());
    CHECK(ids == expected);
    CHECK(std::count(ids.begin(), ids.end(), 128009) == 2'999);
  }
}

TEST_CASE("encode_batch equals encode, on any number of threads", "[tokenizer][threads]") {
  std::mt19937 rng(5);
  std::vector<std::string> texts;
  for (int i = 0; i < 300; ++i) texts.push_back(test::random_text(rng, 200));
  std::vector<Ids> expected;
  for (const auto& t : texts) expected.push_back(tok().encode(t, true, false, SpecialSet::all()));
  for (unsigned threads : {1u, 2u, 3u, 0u}) {
    CHECK(tok().encode_batch(texts, true, false, SpecialSet::all(), {}, threads) == expected);
  }
  texts[123] += "\xFF";
  CHECK_THROWS_WITH(tok().encode_batch(texts, false, false, {}, {}, 2), Catch::Contains("invalid UTF-8"));
}

TEST_CASE("one tokenizer serves many threads at once", "[tokenizer][threads]") {
  std::vector<std::string> texts;
  for (const auto& v : test::vectors()) {
    if (v.kind == test::Vector::encode) texts.push_back(v.text);
  }
  std::vector<Ids> expected;
  for (const auto& t : texts) expected.push_back(tok().encode(t, false, false));
  std::vector<int> ok(4, 0);
  std::vector<std::thread> pool;
  for (int k = 0; k < 4; ++k) {
    pool.emplace_back([&, k] {
      bool good = true;
      for (int rep = 0; rep < 3; ++rep) {
        for (std::size_t i = 0; i < texts.size(); ++i) good = good && tok().encode(texts[i], false, false) == expected[i];
      }
      ok[static_cast<std::size_t>(k)] = good;
    });
  }
  for (auto& t : pool) t.join();
  CHECK(ok == std::vector<int>(4, 1));
}

TEST_CASE("StreamDecoder hands out complete characters", "[tokenizer][stream]") {
  SECTION("an emoji spread over byte tokens appears once complete") {
    const Ids ids = tok().encode("\xF0\x9F\xA6\x99!", false, false);  // 🦙 is not one token
    REQUIRE(ids.size() >= 3);
    StreamDecoder d(tok());
    std::string out;
    for (std::size_t i = 0; i + 1 < ids.size(); ++i) {
      const std::string piece = d.push(ids[i]);
      CHECK(utf8::is_valid(piece));
      out += piece;
    }
    CHECK(out.find("\xF0\x9F\xA6\x99") != std::string::npos);
    out += d.push(ids.back());
    out += d.finish();
    CHECK(out == "\xF0\x9F\xA6\x99!");
  }
  SECTION("the stream equals Meta's decode (errors='replace') for every vector") {
    for (const auto& v : test::vectors()) {
      StreamDecoder d(tok());
      std::string out;
      for (const TokenId id : v.ids) {
        const std::string piece = d.push(id);
        REQUIRE(utf8::is_valid(piece));
        out += piece;
      }
      out += d.finish();
      INFO("vectors.jsonl line " << v.line);
      REQUIRE(out == utf8::replace_invalid(tok().decode(v.ids)));
    }
  }
}

TEST_CASE("all 256 special tokens decode to their names, under Llama 3's names and Llama 3.1's", "[tokenizer][special]") {
  const MappedFile file(test::data_path("tokenizer.model"));
  for (const SpecialTokenNames names : {SpecialTokenNames::llama3, SpecialTokenNames::llama3_1}) {
    const Tokenizer tok = Tokenizer::from_tiktoken(file.bytes(), "tokenizer.model", names);
    const std::vector<std::string> expected = special_token_names(names);
    REQUIRE(expected.size() == 256);
    REQUIRE(tok.n_words() == 128256);
    for (TokenId id = 128000; id < 128256; ++id) {
      const std::string& name = expected[static_cast<std::size_t>(id - 128000)];
      INFO(name);
      CHECK(tok.decode({id}) == name);
      CHECK(tok.special_id(name) == id);
      // As text they are plain text; allowed, one token each.
      CHECK(tok.encode(name, false, false, SpecialSet::all()) == std::vector<TokenId>{id});
      CHECK(tok.encode(name, false, false).size() > 1);
    }
    // The stop tokens of each: Llama 3.1 adds <|eom_id|> (Meta's llama-models names).
    CHECK(tok.stop_tokens().size() == (names == SpecialTokenNames::llama3_1 ? 3u : 2u));
  }
  const Tokenizer t3 = Tokenizer::from_tiktoken(file.bytes(), "", SpecialTokenNames::llama3);
  const Tokenizer t31 = Tokenizer::from_tiktoken(file.bytes(), "", SpecialTokenNames::llama3_1);
  CHECK(t3.decode({128008}) == "<|reserved_special_token_4|>");
  CHECK(t31.decode({128008}) == "<|eom_id|>");
  CHECK(t31.decode({128010}) == "<|python_tag|>");
  CHECK(t3.decode({128255}) == "<|reserved_special_token_250|>");
  CHECK(t31.decode({128255}) == "<|reserved_special_token_246|>");  // 2 + (256 - 11) - 1
}

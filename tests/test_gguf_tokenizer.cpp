// The tokenizer a GGUF file carries (tokenizer.ggml.*), written here from Meta's tokenizer.model the way llama.cpp's
// converter writes it; the real vocab-only GGUF from llama.cpp is checked by test_gguf_vocab_vectors.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "llama3/tokenizer.hpp"
#include "support/checkpoint_writer.hpp"
#include "support/gguf_writer.hpp"
#include "support/test_data.hpp"

using namespace llama3;
using Catch::Contains;
using Ids = std::vector<TokenId>;

namespace {


// Meta's vocabulary as GGUF metadata, built once (280,147 merges).
const test::GgufVocab& meta_vocab() {
  static const test::GgufVocab v(test::llama3_tokenizer());
  return v;
}

Tokenizer from(const test::GgufVocab& v, const std::string& name = "vocab.gguf") {
  test::GgufWriter w;
  w.str("general.architecture", "llama");
  v.write(w);
  const std::string bytes = w.bytes();
  return Tokenizer::from_gguf(io::read_gguf(bytes, nullptr, name), name);
}

void check_same_ids(const Tokenizer& t) {
  for (const auto& v : test::vectors()) {
    INFO("vectors.jsonl line " << v.line);
    if (v.kind == test::Vector::decode) {
      REQUIRE(t.decode(v.ids) == v.bytes);
    } else {
      const SpecialSet allowed = v.kind == test::Vector::encode_all_special ? SpecialSet::all() : SpecialSet();
      REQUIRE(t.encode(v.text, false, false, allowed) == v.ids);
    }
  }
}

}  // namespace

TEST_CASE("a GGUF's tokenizer gives the ids of tokenizer.model", "[tokenizer][gguf]") {
  const Tokenizer t = from(meta_vocab());
  CHECK(t.n_words() == 128256);
  CHECK(t.num_base_tokens() == 128000);
  CHECK(t.special_token_names() == test::llama3_tokenizer().special_token_names());
  CHECK(t.bos_id() == 128000);
  CHECK(t.stop_tokens() == test::llama3_tokenizer().stop_tokens());
  check_same_ids(t);

  SECTION("through the path, as a file") {
    const auto file = test::temp_dir("gguf-tokenizer") / "vocab.gguf";
    test::GgufWriter w;
    meta_vocab().write(w);
    std::ofstream(file, std::ios::binary) << w.bytes();
    const Tokenizer from_path(file);
    CHECK(from_path.encode("A tokenizer read from its GGUF file.", true, false) ==
          test::llama3_tokenizer().encode("A tokenizer read from its GGUF file.", true, false));
  }
  SECTION("without token types, the special tokens are the trailing <|...|> names") {
    test::GgufVocab v = meta_vocab();
    v.types.reset();
    const Tokenizer untyped = from(v);
    CHECK(untyped.num_base_tokens() == 128000);
    CHECK(untyped.encode("<|eot_id|>hi", false, false, SpecialSet::all()) == Ids{128009, 6151});
  }
  SECTION("without merges or pre-tokenizer name (older conversions)") {
    test::GgufVocab v = meta_vocab();
    v.merges.clear();
    v.pre.reset();
    check_same_ids(from(v));
  }
  SECTION("Llama 3.1's special-token names come from the file") {
    const Tokenizer t31 = Tokenizer::from_tiktoken(test::read_file(test::data_path("tokenizer.model")),
                                                   "tokenizer.model", SpecialTokenNames::llama3_1);
    test::GgufVocab v = meta_vocab();
    for (std::size_t i = 128000; i < v.tokens.size(); ++i) v.tokens[i] = t31.special_token_names()[i - 128000];
    CHECK(from(v).stop_tokens() == Ids{128001, 128008, 128009});
  }
}

TEST_CASE("a GGUF tokenizer that is not Llama 3's is an error naming the key and entry", "[tokenizer][gguf][errors]") {
  const auto fails = [](const test::GgufVocab& v, const std::string& expected) {
    CHECK_THROWS_WITH(from(v, "bad.gguf"), Contains("bad.gguf") && Contains(expected));
  };
  test::GgufVocab v = meta_vocab();
  SECTION("SentencePiece") {
    v.model = "llama";
    fails(v, "SentencePiece");
  }
  SECTION("no tokenizer") {
    v.model.reset();
    fails(v, "tokenizer.ggml.model is missing");
  }
  SECTION("another split") {
    v.pre = "qwen2";
    fails(v, "\"qwen2\"");
  }
  SECTION("a token outside the byte-level alphabet") {
    v.tokens[300] = "\xE4\xB8\x80";
    fails(v, "tokenizer.ggml.tokens[300]");
  }
  SECTION("an empty token") {
    v.tokens[7].clear();
    fails(v, "tokenizer.ggml.tokens[7] is empty");
  }
  SECTION("a duplicate token") {
    v.tokens[1000] = v.tokens[999];
    fails(v, "duplicate token");
  }
  SECTION("a missing byte") {
    v.tokens[0] = v.tokens[127999] + "x";
    fails(v, "byte 0x21 is not a token");
  }
  SECTION("types of the wrong length") {
    v.types->pop_back();
    fails(v, "tokenizer.ggml.token_type: expected 128256 integers");
  }
  SECTION("a special token among the normal ones") {
    (*v.types)[500] = 3;
    fails(v, "tokenizer.ggml.token_type[500] is 3");
  }
  SECTION("merges out of rank order") {
    std::swap(v.merges[10], v.merges[20000]);
    fails(v, "tokenizer.ggml.merges[");
    fails(v, "rank order");
  }
  SECTION("a merge that is not a pair") {
    v.merges[5] = "abc";
    fails(v, "tokenizer.ggml.merges[5]: expected \"left right\"");
  }
  SECTION("a merge that makes no token") {
    v.merges[0] = "x q";
    fails(v, "does not join two tokens");
  }
  SECTION("no Llama 3 special tokens") {
    v.tokens.resize(128000);
    v.types->resize(128000);
    fails(v, "<|begin_of_text|>");
  }
}

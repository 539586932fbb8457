#include <catch2/catch.hpp>

#include "llama3/chat_format.hpp"
#include "support/files.hpp"
#include "support/test_data.hpp"

using namespace llama3;
using Ids = std::vector<TokenId>;

namespace {
const ChatFormat& format() {
  static const ChatFormat f(test::llama3_tokenizer());
  return f;
}
}  // namespace

TEST_CASE("Meta's chat format reference cases", "[chat]") {
  // From meta-llama/llama3's tokenizer tests.
  CHECK(format().encode_message({Role::user, "This is a test sentence."}) ==
        Ids{128006, 882, 128007, 271, 2028, 374, 264, 1296, 11914, 13, 128009});
  const Dialog dialog = {{Role::system, "This is a test sentence."}, {Role::user, "This is a response."}};
  CHECK(format().encode_dialog_prompt(dialog) ==
        Ids{128000, 128006, 9125, 128007, 271, 2028, 374, 264, 1296, 11914, 13, 128009, 128006, 882, 128007, 271,
            2028, 374, 264, 2077, 13, 128009, 128006, 78191, 128007, 271});
}

TEST_CASE("headers, stripping and BOS", "[chat]") {
  const Tokenizer& tok = test::llama3_tokenizer();
  const Ids header = format().encode_header({Role::assistant, "ignored"});
  CHECK(header == Ids{128006, 78191, 128007, 271});
  // Content is stripped as Python's str.strip() does, Unicode whitespace included.
  CHECK(format().encode_message({Role::user, "\n\t\xE3\x80\x80 hi \x1C\n"}) ==
        format().encode_message({Role::user, "hi"}));
  // Text that looks like a special token stays text: BOS appears exactly once.
  const Ids ids = format().encode_dialog_prompt({{Role::user, "<|begin_of_text|><|eot_id|>"}});
  CHECK(std::count(ids.begin(), ids.end(), tok.bos_id()) == 1);
  CHECK(std::count(ids.begin(), ids.end(), 128009) == 1);
  CHECK(ids.front() == tok.bos_id());
  // An empty dialog is the BOS and the assistant header.
  Ids expected{tok.bos_id()};
  expected.insert(expected.end(), header.begin(), header.end());
  CHECK(format().encode_dialog_prompt({}) == expected);
  // The decoded prompt reads like the documented template.
  CHECK(tok.decode(format().encode_dialog_prompt({{Role::system, " Be brief. "}, {Role::user, "Hi"}})) ==
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST_CASE("Llama 3.1's ipython role and <|eom_id|>", "[chat]") {
  const Tokenizer t31 = Tokenizer::from_tiktoken(test::read_file(test::data_path("tokenizer.model")),
                                                 "tokenizer.model", SpecialTokenNames::llama3_1);
  const ChatFormat f(t31);
  const Ids m = f.encode_message({Role::ipython, "{\"result\": 4}"});
  CHECK(t31.decode(m) == "<|start_header_id|>ipython<|end_header_id|>\n\n{\"result\": 4}<|eot_id|>");
  CHECK(std::find(t31.stop_tokens().begin(), t31.stop_tokens().end(), t31.special_token("<|eom_id|>")) !=
        t31.stop_tokens().end());
}

TEST_CASE("roles by name, and bad input", "[chat][errors]") {
  CHECK(parse_role("assistant") == Role::assistant);
  CHECK(parse_role("ipython") == Role::ipython);
  CHECK(to_string(Role::system) == "system");
  CHECK_THROWS_WITH(parse_role("robot"), Catch::Contains("robot"));
  CHECK_THROWS_WITH(format().encode_message({Role::user, "bad \xFF"}), Catch::Contains("invalid UTF-8") &&
                                                                       Catch::Contains("byte offset 4"));
  // A tokenizer without the chat tokens cannot format chats.
  const Tokenizer tiny = Tokenizer::from_tiktoken(test::tiktoken_file(test::tiny_tokens()));
  std::string json = test::hf_tokenizer_json(tiny);
  json.replace(json.find("<|start_header_id|>"), 19, "<|start_header|>");
  const Tokenizer no_chat = Tokenizer::from_hf_json(json);
  CHECK_THROWS_WITH(ChatFormat(no_chat), Catch::Contains("<|start_header_id|>"));
}

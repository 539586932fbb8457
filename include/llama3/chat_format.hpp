#pragma once
// Llama 3's chat format, as Meta's ChatFormat (llama/tokenizer.py) writes it:
//   <|begin_of_text|> then, per message,
//   <|start_header_id|> role <|end_header_id|> "\n\n" content.strip() <|eot_id|>
//   and finally the header of the assistant message the model is to write.
// Role names and message content are encoded as plain text: text that looks like a special token stays text,
// so <|begin_of_text|> appears exactly once.
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "llama3/core/error.hpp"
#include "llama3/core/json_parse.hpp"
#include "llama3/tokenizer.hpp"
#include "llama3/tokenizer/unicode.hpp"
#include "llama3/tokenizer/utf8.hpp"

namespace llama3 {

// "system", "user", "assistant", and Llama 3.1's "ipython" (the output of a tool call).
enum class Role { system, user, assistant, ipython };

inline std::string_view to_string(Role r) noexcept {
  switch (r) {
    case Role::system:
      return "system";
    case Role::user:
      return "user";
    case Role::assistant:
      return "assistant";
    case Role::ipython:
      return "ipython";
  }
  return "user";
}

inline Role parse_role(std::string_view name) {
  for (Role r : {Role::system, Role::user, Role::assistant, Role::ipython}) {
    if (name == to_string(r)) return r;
  }
  throw Error("unknown role " + detail::quote(name) + ": expected system, user, assistant or ipython");
}

struct Message {
  Role role;
  std::string content;
};

using Dialog = std::vector<Message>;

// A dialog written as JSON, as Meta's example_chat_completion.py spells one: [{"role": "user", "content": "..."}, ...].
// Anything else (malformed JSON, a repeated key, another shape, an unknown role, no messages) is an Error naming
// `source` and the message.
inline Dialog parse_dialog_json(std::string_view json_text, const std::string& source) {
  simdjson::dom::parser parser;
  const simdjson::dom::element doc = json::parse(parser, json_text, source);
  const auto fail = [&](const std::string& what) -> void {
    throw Error(source, std::nullopt, what + "; expected a JSON list of {\"role\": ..., \"content\": ...}");
  };
  simdjson::dom::array list;
  if (doc.get_array().get(list)) fail("not a list");
  Dialog dialog;
  for (auto item : list) {
    std::string_view role, content;
    if (item["role"].get_string().get(role) || item["content"].get_string().get(content)) {
      fail(detail::cat("message ", dialog.size(), " is not {\"role\": \"...\", \"content\": \"...\"}"));
    }
    try {
      dialog.push_back({parse_role(role), std::string(content)});
    } catch (const Error& e) {
      fail(detail::cat("message ", dialog.size(), ": ", e.what()));
    }
  }
  if (dialog.empty()) fail("the dialog is empty");
  return dialog;
}

class ChatFormat {
public:
  explicit ChatFormat(const Tokenizer& tokenizer)
      : tokenizer_(&tokenizer),
        start_header_id_(tokenizer.special_token("<|start_header_id|>")),
        end_header_id_(tokenizer.special_token("<|end_header_id|>")),
        eot_id_(tokenizer.special_token("<|eot_id|>")) {}

  std::vector<TokenId> encode_header(const Message& message) const {
    std::vector<TokenId> tokens;
    append_header(message.role, tokens);
    return tokens;
  }

  std::vector<TokenId> encode_message(const Message& message) const {
    std::vector<TokenId> tokens;
    append_message(message, tokens);
    return tokens;
  }

  std::vector<TokenId> encode_dialog_prompt(const Dialog& dialog) const {
    std::vector<TokenId> tokens{tokenizer_->bos_id()};
    for (const Message& m : dialog) append_message(m, tokens);
    append_header(Role::assistant, tokens);  // the start of the message the model completes
    return tokens;
  }

  const Tokenizer& tokenizer() const noexcept { return *tokenizer_; }

private:
  void append(std::string_view text, std::vector<TokenId>& tokens) const {
    const auto ids = tokenizer_->encode(text, false, false);
    tokens.insert(tokens.end(), ids.begin(), ids.end());
  }

  void append_header(Role role, std::vector<TokenId>& tokens) const {
    tokens.push_back(start_header_id_);
    append(to_string(role), tokens);
    tokens.push_back(end_header_id_);
    append("\n\n", tokens);
  }

  void append_message(const Message& m, std::vector<TokenId>& tokens) const {
    append_header(m.role, tokens);
    if (const auto bad = utf8::find_invalid(m.content)) {
      throw Error(std::string(), *bad, "invalid UTF-8 in the content of a " + std::string(to_string(m.role)) +
                                           " message");
    }
    append(unicode::python_strip(m.content), tokens);
    tokens.push_back(eot_id_);
  }

  const Tokenizer* tokenizer_;
  TokenId start_header_id_, end_header_id_, eot_id_;
};

}  // namespace llama3

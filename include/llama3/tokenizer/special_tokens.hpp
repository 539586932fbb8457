#pragma once
// Llama 3's 256 special tokens, named as Meta's tokenizer.py names them, and the sets a caller passes to
// encode() as allowed_special / disallowed_special.
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace llama3 {

inline constexpr int num_reserved_special_tokens = 256;

// Which of Meta's tokenizer.py lists names the 256 special tokens. Only names differ; ids and bytes of ordinary
// text do not. Llama 3 (meta-llama/llama3): 128008 is <|reserved_special_token_4|>. Llama 3.1 and later
// (meta-llama/llama-models): 128004 <|finetune_right_pad_id|>, 128005 <|step_id|>, 128008 <|eom_id|>, 128010
// <|python_tag|>, and the reserved tokens renumbered from 2.
enum class SpecialTokenNames { llama3, llama3_1 };

inline std::vector<std::string> special_token_names(SpecialTokenNames names = SpecialTokenNames::llama3) {
  std::vector<std::string> out;
  if (names == SpecialTokenNames::llama3) {
    out = {"<|begin_of_text|>",
           "<|end_of_text|>",
           "<|reserved_special_token_0|>",
           "<|reserved_special_token_1|>",
           "<|reserved_special_token_2|>",
           "<|reserved_special_token_3|>",
           "<|start_header_id|>",
           "<|end_header_id|>",
           "<|reserved_special_token_4|>",
           "<|eot_id|>"};
    for (int i = 5; i < num_reserved_special_tokens - 5; ++i) {
      out.push_back("<|reserved_special_token_" + std::to_string(i) + "|>");
    }
  } else {
    out = {"<|begin_of_text|>",  "<|end_of_text|>",   "<|reserved_special_token_0|>",
           "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>",
           "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>",
           "<|eot_id|>",         "<|python_tag|>"};
    const int n = static_cast<int>(out.size());
    for (int i = 0; i < num_reserved_special_tokens - n; ++i) {
      out.push_back("<|reserved_special_token_" + std::to_string(2 + i) + "|>");
    }
  }
  return out;
}

// A set of special tokens by name, or all of them: the allowed_special / disallowed_special arguments of Meta's
// Tokenizer.encode. The default is the empty set (Meta's defaults for both).
class SpecialSet {
public:
  SpecialSet() = default;
  SpecialSet(std::initializer_list<std::string_view> names) : names_(names.begin(), names.end()) {}
  explicit SpecialSet(std::vector<std::string> names) : names_(std::move(names)) {}

  static SpecialSet all() {
    SpecialSet s;
    s.all_ = true;
    return s;
  }
  static SpecialSet none() { return {}; }

  bool is_all() const noexcept { return all_; }
  bool empty() const noexcept { return !all_ && names_.empty(); }
  const std::vector<std::string>& names() const noexcept { return names_; }

private:
  bool all_ = false;
  std::vector<std::string> names_;
};

}  // namespace llama3

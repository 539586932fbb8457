// Fuzzes the dialog JSON reader (llama3-chat --dialog): any input is a non-empty Dialog or an llama3::Error, and a
// Dialog encodes with the chat format, or is an Error (text that is not UTF-8 cannot come out of JSON).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "llama3/chat_format.hpp"

namespace {
const llama3::Tokenizer& tokenizer() {
  static const llama3::Tokenizer t(std::string(LLAMA3_TEST_DATA_DIR) + "/tokenizer.model");
  return t;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tokenizer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  llama3::Dialog dialog;
  try {
    dialog = llama3::parse_dialog_json(json, "dialog.json");
  } catch (const llama3::Error&) {
    return 0;
  }
  FUZZ_CHECK(!dialog.empty());
  const llama3::ChatFormat format(tokenizer());
  const auto ids = format.encode_dialog_prompt(dialog);  // JSON strings are UTF-8: this must not throw
  FUZZ_CHECK(ids.size() >= 1 + 4 * dialog.size());
  return 0;
}

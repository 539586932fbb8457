// Encodes Meta's reference sentence and a chat prompt with the library found by CMake; exits non-zero on a
// mismatch.
#include <llama3/llama3.hpp>

#include <iostream>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer tokenizer.model\n";
    return 2;
  }
  const llama3::Tokenizer tok(argv[1]);
  const std::vector<llama3::TokenId> expected = {128000, 2028, 374, 264, 1296, 11914, 13, 128001};
  const auto ids = tok.encode("This is a test sentence.", true, true);
  const llama3::ChatFormat chat(tok);
  const auto prompt = chat.encode_dialog_prompt({{llama3::Role::user, "Hi"}});
  const bool ok = ids == expected && tok.decode(prompt) ==
      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
  std::cout << "llama3.hpp " << llama3::version << (ok ? ": ok" : ": MISMATCH") << "\n";
  return ok ? 0 : 1;
}

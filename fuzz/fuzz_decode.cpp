// Fuzzes decoding token ids (what a model's sampler hands over) with Meta's tokenizer: each 3 bytes of input are an
// id, some out of range. decode() of an out-of-range id is an Error naming its position; otherwise the stream
// decoder hands out only complete UTF-8, and all of it together is Meta's decode (errors="replace").
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "llama3/tokenizer.hpp"

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
  const llama3::Tokenizer& tok = tokenizer();
  std::vector<llama3::TokenId> ids;
  bool out_of_range = false;
  for (std::size_t i = 0; i + 3 <= size; i += 3) {
    const std::uint32_t v = data[i] | data[i + 1] << 8 | data[i + 2] << 16;
    // Mostly ids of the vocabulary (the specials among them), sometimes just past it or negative.
    const auto id = static_cast<llama3::TokenId>(v % 8 == 7 ? static_cast<std::int32_t>(v) - (1 << 23)
                                                            : static_cast<std::int32_t>(v % (tok.n_words() + 2)));
    out_of_range |= id < 0 || id >= tok.n_words();
    ids.push_back(id);
  }
  if (out_of_range) {
    bool threw = false;
    try {
      tok.decode(ids);
    } catch (const llama3::Error& e) {
      threw = std::string(e.what()).find("out of range") != std::string::npos;
    }
    FUZZ_CHECK(threw);
    return 0;
  }
  llama3::StreamDecoder stream(tok);
  std::string streamed;
  for (const llama3::TokenId id : ids) {
    const std::string piece = stream.push(id);
    FUZZ_CHECK(llama3::utf8::is_valid(piece));
    streamed += piece;
  }
  streamed += stream.finish();
  FUZZ_CHECK(streamed == llama3::utf8::replace_invalid(tok.decode(ids)));
  return 0;
}

// llama3-logits: the logits a checkpoint gives for a list of token ids, as JSON. The tool to reach for when a
// conversion looks wrong: compare its output with another implementation's.
//
//   llama3-logits --model Llama3.2-1B/ --tokens 128000,9906,1917 --greedy 8
//   {"logits": [[...128256 floats...]], "greedy": [...8 ids...]}
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <cstdio>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli.hpp"
#include "llama3/model/transformer.hpp"

namespace {

// Token ids separated by commas or white space; `what` names where they came from.
std::vector<llama3::TokenId> parse_tokens(std::string_view s, const std::string& what) {
  std::vector<llama3::TokenId> out;
  std::size_t at = 0;
  while (at < s.size()) {
    const std::size_t begin = s.find_first_not_of(", \t\r\n", at);
    if (begin == std::string_view::npos) break;
    const std::size_t end = std::min(s.find_first_of(", \t\r\n", begin), s.size());
    llama3::TokenId v = 0;
    const auto [stop, ec] = std::from_chars(s.data() + begin, s.data() + end, v);
    if (ec != std::errc() || stop != s.data() + end) {
      throw std::runtime_error(llama3::detail::cat(what, ": ", llama3::detail::quote(s.substr(begin, end - begin)),
                                                   " (id ", out.size(), ") is not a token id; expected ids separated "
                                                   "by commas or spaces"));
    }
    out.push_back(v);
    at = end;
  }
  if (out.empty()) throw std::runtime_error(what + ": no token ids given");
  return out;
}

// The text of --tokens-file: a file, or standard input for "-".
std::string read_tokens_file(const std::string& path) {
  if (path != "-") return std::string(llama3::MappedFile(path).bytes());
  std::string text;
  char buf[1 << 16];
  for (ssize_t n; (n = ::read(STDIN_FILENO, buf, sizeof buf)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("--tokens-file -: cannot read standard input: ") + std::strerror(errno));
    }
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

void append_float(std::string& out, float f) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, f);  // shortest text that reads back as the same float
  out.append(buf, r.ptr);
}

}  // namespace

int main(int argc, char** argv) {
  std::string quantize;
  std::string model_dir, tokens_text;
  bool all_positions = false;
  int greedy = 0, max_seq_len = 0;
  unsigned threads = 0;
  CLI::App app{"Prints the logits a Llama 3 checkpoint (Meta or Hugging Face folder) gives for token ids, as JSON:\n"
               "{\"logits\": [[...]], \"greedy\": [...]}. The logits are those of the last position unless\n"
               "--all-positions; \"greedy\" (with --greedy N) continues the tokens N steps by argmax.",
               "llama3-logits"};
  app.add_option("--model", model_dir, "checkpoint folder: params.json + consolidated.00.pth, or config.json + "
                                       "model.safetensors")->required();
  std::string tokens_file;
  auto* input = app.add_option_group("input", "the token ids: one of");
  input->add_option("--tokens", tokens_text, "token ids, comma-separated (no BOS is added)");
  input->add_option("--tokens-file", tokens_file, "token ids from a file (- for standard input), separated by "
                    "commas or white space: for more ids than a command line holds");
  input->require_option(1);
  app.add_flag("--all-positions", all_positions, "logits of every position, not only the last");
  app.add_option("--greedy", greedy, "also continue greedily this many tokens")->check(llama3::cli::integer(0, 1 << 20));
  llama3::cli::add_threads(app, threads);
  app.add_option("--quantize", quantize, "quantize the weights when loading: q8_0 or q4_0 (GGUF's blocks)")
      ->check(CLI::IsMember({"q8_0", "q4_0"}));
  bool no_mmap = false;
  app.add_flag("--no-mmap", no_mmap, "read the weights into memory instead of mapping the files (faster decoding where "
               "mapped pages are slow, as on some virtual machines)");
  std::string kv_cache = "f32";
  app.add_option("--kv-cache", kv_cache, "the KV cache's type: f32, or bf16 (half the memory; logits within ~1e-2)")
      ->capture_default_str()->check(CLI::IsMember({"f32", "bf16"}));
  app.add_option("--max-seq-len", max_seq_len, "KV cache length (default: the tokens plus --greedy)")
      ->check(llama3::cli::integer(1, 1 << 24));
  CLI11_PARSE(app, argc, argv);

  try {
    const std::vector<llama3::TokenId> tokens =
        tokens_file.empty() ? parse_tokens(tokens_text, "--tokens") : parse_tokens(read_tokens_file(tokens_file),
                                                                                   "--tokens-file " + tokens_file);
    llama3::LoadOptions options;
    options.max_seq_len = max_seq_len ? max_seq_len : static_cast<int>(tokens.size()) + greedy;
    if (!quantize.empty()) options.quantize = llama3::parse_quantization(quantize);
    if (kv_cache == "bf16") options.kv_cache = llama3::DType::bf16;
    options.mmap = !no_mmap;
    if (isatty(STDERR_FILENO)) {
      options.progress = [](const llama3::LoadProgress& p) {
        std::fprintf(stderr, "\r%.*s %zu/%zu   ", static_cast<int>(p.stage.size()), p.stage.data(), p.done, p.total);
        if (p.done == p.total) std::fprintf(stderr, "\n");
      };
    }
    auto model = llama3::Transformer<>::load(model_dir, options, threads);
    const int vocab = model.params().vocab_size;

    llama3::Tensor<float> logits =
        model.forward(tokens, 0, all_positions ? llama3::Logits::all : llama3::Logits::last);
    std::string out = "{\"logits\": [";
    const std::int64_t rows = logits.numel() / vocab;
    for (std::int64_t r = 0; r < rows; ++r) {
      out += r ? ", [" : "[";
      for (int i = 0; i < vocab; ++i) {
        if (i) out += ", ";
        append_float(out, logits.data()[r * vocab + i]);
      }
      out += "]";
    }
    out += "]";
    if (greedy > 0) {
      out += ", \"greedy\": [";
      const float* last = logits.data() + (rows - 1) * vocab;
      llama3::TokenId next = static_cast<llama3::TokenId>(std::max_element(last, last + vocab) - last);
      for (int s = 0; s < greedy; ++s) {
        if (s) out += ", ";
        out += std::to_string(next);
        if (s + 1 == greedy) break;
        logits = model.forward(std::span(&next, 1), static_cast<int>(tokens.size()) + s, llama3::Logits::last);
        next = static_cast<llama3::TokenId>(std::max_element(logits.data(), logits.data() + vocab) - logits.data());
      }
      out += "]";
    }
    out += "}\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llama3-logits: %s\n", e.what());
    return 1;
  }
  return 0;
}

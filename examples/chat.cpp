// llama3-chat: the reference app. An interactive conversation with a Llama 3 checkpoint that streams the reply,
// keeps the dialog's KV cache between turns, and stops a reply on Ctrl-C; or, with --dialog/--prompt, one reply for
// scripts.
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>

#include <CLI/CLI.hpp>

#include "cli.hpp"
#include "llama3/generation/llama.hpp"
#include "llama3/generation/session.hpp"

namespace {

std::atomic<bool> interrupted{false};
void on_sigint(int) { interrupted.store(true); }

llama3::Dialog read_dialog(const std::string& path) {
  const llama3::MappedFile file(path);  // a regular file (a named pipe would block)
  return llama3::parse_dialog_json(file.bytes(), path);
}

// Lines from standard input that notice Ctrl-C at any moment: a SIGINT that lands just before a blocking read would
// not interrupt it, so the read waits in poll() and checks the flag between short waits.
class LineReader {
public:
  enum Result { line, end, interrupted };
  Result read(std::string& out) {
    for (;;) {
      if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
        out = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      if (eof_) {
        if (buffer_.empty()) return end;
        out = std::move(buffer_);  // a last line without a newline
        buffer_.clear();
        return line;
      }
      if (::interrupted.load()) {
        buffer_.clear();  // Ctrl-C drops the line being typed, as a shell does
        return interrupted;
      }
      pollfd p{STDIN_FILENO, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;  // timeout, or EINTR from the signal: check the flag
      char chunk[4096];
      const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
      if (n > 0) {
        buffer_.append(chunk, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        eof_ = true;
      }
    }
  }

private:
  std::string buffer_;
  bool eof_ = false;
};

void print_stats(const llama3::TurnStats& s, bool lookup) {
  std::printf("[prefill %d tokens (%d reused) at %.1f tok/s, decode %d tokens at %.1f tok/s", s.prefill_tokens,
              s.reused_tokens, s.prefill_tokens_per_second(), s.generated_tokens, s.decode_tokens_per_second());
  if (lookup) {
    std::printf(", lookup: %d of %d drafts accepted in %d passes", s.lookup.accepted, s.lookup.drafted,
                s.lookup.passes);
  }
  std::printf("]\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, tokenizer_path, system, dialog_path, prompt, quantize;
  llama3::SamplingParams sampling;
  std::uint64_t seed = std::random_device{}();
  int max_gen_len = 512, max_seq_len = 2048, lookup = 0;
  unsigned threads = 0;
  CLI::App app{"Chat with a Llama 3 model. Interactive by default: type a message, Enter to send; the reply streams\n"
               "as it is generated. Commands: /reset (forget the conversation), /system TEXT, /stats, /exit.\n"
               "Ctrl-C stops the current reply; Ctrl-D or /exit quits. With --dialog or --prompt: one reply, then exit.",
               "llama3-chat"};
  app.add_option("--model", model_dir, "checkpoint folder (Meta: params.json + consolidated.00.pth; Hugging Face: "
                                       "config.json + model.safetensors)")->required();
  app.add_option("--tokenizer", tokenizer_path, "tokenizer.model, tokenizer.json or .gguf (default: the GGUF's own, or found in the folder)");
  app.add_option("--system", system, "system message");
  llama3::cli::add_sampling(app, sampling, /*all=*/true);
  llama3::cli::add_seed(app, seed, "random seed (default: a new one each run)");
  app.add_option("--max-gen-len", max_gen_len, "longest reply, in tokens")->capture_default_str()
      ->check(llama3::cli::integer(1, 1 << 24));
  app.add_option("--max-seq-len", max_seq_len, "context length: older turns are dropped beyond it")
      ->capture_default_str()->check(llama3::cli::integer(2, 1 << 24));
  app.add_option("--lookup", lookup, "prompt-lookup decoding: up to N draft tokens from the conversation verified per "
                 "pass (0: off); the same replies, faster when they repeat the context")
      ->capture_default_str()->check(llama3::cli::integer(0, llama3::lookup_max_draft));
  llama3::cli::add_threads(app, threads);
  app.add_option("--quantize", quantize, "quantize the weights when loading: q8_0 or q4_0 (GGUF's blocks)")
      ->check(CLI::IsMember({"q8_0", "q4_0"}));
  bool no_mmap = false;
  app.add_flag("--no-mmap", no_mmap, "read the weights into memory instead of mapping the files (faster decoding where "
               "mapped pages are slow, as on some virtual machines)");
  std::string kv_cache = "f32";
  app.add_option("--kv-cache", kv_cache, "the KV cache's type: f32, or bf16 (half the memory; logits within ~1e-2)")
      ->capture_default_str()->check(CLI::IsMember({"f32", "bf16"}));
  app.add_option("--dialog", dialog_path, "a JSON list of {\"role\", \"content\"}: print the reply and exit");
  app.add_option("--prompt", prompt, "one user message: print the reply and exit");
  CLI11_PARSE(app, argc, argv);
  sampling.seed = seed;
  max_gen_len = std::min(max_gen_len, max_seq_len - 1);

  try {
    const bool tty = isatty(STDERR_FILENO);
    auto progress = [tty](const llama3::LoadProgress& p) {
      if (!tty && p.done != p.total) return;
      std::fprintf(stderr, "\rloading: %.*s %zu/%zu   %s", static_cast<int>(p.stage.size()), p.stage.data(), p.done,
                   p.total, p.done == p.total ? "\n" : "");
    };
    if (tokenizer_path.empty() && std::filesystem::is_directory(model_dir)) {
      tokenizer_path = llama3::find_tokenizer(model_dir, "give its path with --tokenizer FILE");
    }
    llama3::LoadOptions options;
    options.max_seq_len = max_seq_len;
    options.progress = progress;
    if (!quantize.empty()) options.quantize = llama3::parse_quantization(quantize);
    if (kv_cache == "bf16") options.kv_cache = llama3::DType::bf16;
    options.mmap = !no_mmap;
    auto llama = llama3::Llama<>::build(model_dir, tokenizer_path, options, seed, threads);
    const auto& params = llama.model().params();

    if (!dialog_path.empty() || !prompt.empty()) {  // one reply for scripts
      llama3::Dialog dialog;
      if (!dialog_path.empty()) {
        dialog = read_dialog(dialog_path);
      } else {
        if (!system.empty()) dialog.push_back({llama3::Role::system, system});
        dialog.push_back({llama3::Role::user, prompt});
      }
      llama3::GenerateOptions o;
      o.sampling = sampling;
      o.lookup = lookup;
      o.on_text = [](int, std::string_view text) {
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
        return true;
      };
      llama.chat_completion({dialog}, max_gen_len, o);
      std::printf("\n");
      return 0;
    }

    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: Ctrl-C at the prompt interrupts the read
    sigaction(SIGINT, &sa, nullptr);

    llama3::ChatSession<> session(llama, max_gen_len, system.empty() ? std::nullopt : std::optional(system));
    session.set_lookup(lookup);
    std::printf("llama3-chat: %s (dim %d, %d layers, %d/%d heads, vocab %d, context %d tokens)\n", model_dir.c_str(),
                params.dim, params.n_layers, params.n_heads, params.n_kv_heads, params.vocab_size, params.max_seq_len);
    std::printf("/reset forgets the conversation, /system TEXT sets the system message, /stats, /exit; Ctrl-C stops "
                "a reply\n");
    llama3::TurnStats last{};
    int turns = 0;
    long total_generated = 0;
    LineReader input;
    for (;;) {
      interrupted.store(false);
      std::printf("> ");
      std::fflush(stdout);
      std::string line;
      const LineReader::Result got = input.read(line);
      if (got == LineReader::interrupted) {  // Ctrl-C at the prompt: a fresh prompt
        std::printf("\n");
        continue;
      }
      if (got == LineReader::end) {
        std::printf("\n");
        break;
      }
      if (line.empty()) continue;
      if (line == "/exit" || line == "/quit") break;
      if (line == "/reset") {
        session.reset();
        std::printf("(conversation reset)\n");
        continue;
      }
      if (line.rfind("/system", 0) == 0) {
        session.set_system(line.size() > 8 ? line.substr(8) : "");
        std::printf("(system message set)\n");
        continue;
      }
      if (line == "/stats") {
        std::printf("turns %d, tokens generated %ld, context in use %zu of %d tokens\n", turns, total_generated,
                    session.cached_tokens().size(), params.max_seq_len);
        if (turns) print_stats(last, session.lookup() > 0);
        continue;
      }
      if (line[0] == '/') {
        std::printf("unknown command %s: /reset, /system TEXT, /stats, /exit\n", line.c_str());
        continue;
      }
      interrupted.store(false);
      try {
        session.say(line, sampling, &last, [](std::string_view text) {
          std::fwrite(text.data(), 1, text.size(), stdout);
          std::fflush(stdout);
          return !interrupted.load();
        });
      } catch (const llama3::Error& e) {  // a bad line (not UTF-8, too long...) loses nothing: say why, ask again
        std::printf("(not sent: %s; the conversation is as it was)\n", e.what());
        continue;
      }
      ++turns;
      total_generated += last.generated_tokens;
      std::printf("\n");
      if (last.interrupted) std::printf("[stopped]\n");
      if (last.dropped_turns) {
        std::printf("(dropped %d old message%s to fit the %d-token context)\n", last.dropped_turns,
                    last.dropped_turns == 1 ? "" : "s", params.max_seq_len);
      }
      print_stats(last, session.lookup() > 0);
    }
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "llama3-chat: %s\n", e.what());
    return 1;
  }
  return 0;
}

// llama3-chat and llama3-complete end to end, on a small random model with the real Llama 3 vocabulary that the
// test writes: driven through a pseudo-terminal as a person would (Ctrl-C mid-reply, /stats, /reset, a history that
// overflows the context), through --dialog and --prompt against the library's chat_completion, and on missing or
// broken model folders.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "llama3/generation/llama.hpp"
#include "llama3/generation/session.hpp"
#include "llama3/io/hf_writer.hpp"
#include "llama3/model/synthetic.hpp"
#include "support/checkpoint_writer.hpp"
#include "support/run_command.hpp"
#include "support/small_model.hpp"
#include "support/test_data.hpp"

using namespace llama3;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

// The chat model: 2 layers of width 64 over Meta's 128,256-token vocabulary, bf16, written once per test run.
const fs::path& chat_model() {
  static const fs::path dir = [] {
    const fs::path d = test::temp_dir("chat-model");
    Checkpoint c = synthetic_checkpoint<bf16>(test::small_llama3_params(), 21);
    io::write_hf_checkpoint(d, c);
    fs::copy_file(test::data_path("tokenizer.model"), d / "tokenizer.model");
    return d;
  }();
  return dir;
}

// A program on a pseudo-terminal: what it prints, what we type.
class Pty {
public:
  explicit Pty(const std::vector<std::string>& argv) {
    pid_ = forkpty(&fd_, nullptr, nullptr, nullptr);
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Pty() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }

  // Reads until `what` appears after `from` (an offset into everything read so far); fails after `seconds`.
  std::size_t wait_for(const std::string& what, std::size_t from = 0, double seconds = 120) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    for (;;) {
      if (const auto at = out_.find(what, from); at != std::string::npos) return at;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !read_some(static_cast<int>(left.count()))) {
        FAIL("waited for \"" << what << "\"; the program printed:\n" << out_);
      }
    }
  }
  // Reads until at least n bytes past `from`.
  void wait_for_bytes(std::size_t from, std::size_t n, double seconds = 120) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (out_.size() < from + n) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !read_some(static_cast<int>(left.count()))) FAIL("no output; printed:\n" << out_);
    }
  }
  void type(const std::string& text) { REQUIRE(write(fd_, text.data(), text.size()) == static_cast<ssize_t>(text.size())); }
  const std::string& output() const noexcept { return out_; }

  // Reads to the end and returns the exit status.
  int wait_exit(double seconds = 120) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < deadline && read_some(100)) {
    }
    int status = 0;
    for (;;) {
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (std::chrono::steady_clock::now() > deadline) FAIL("the program did not exit; printed:\n" << out_);
      read_some(50);
    }
    exited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

private:
  bool read_some(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char buf[4096];
    const ssize_t n = read(fd_, buf, sizeof buf);
    if (n <= 0) return false;  // EIO: the program closed the terminal
    out_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  pid_t pid_ = -1;
  bool exited_ = false;
  std::string out_;
};

struct Run {
  int status;
  std::string out, err;
};

Run run(const std::string& args) {
  const fs::path err = test::temp_dir("chat-stderr") / "err.txt";
  const test::CommandResult c = test::run_command(args + " 2>" + err.string());
  return {c.status, c.out, test::read_file(err)};
}

const std::string chat = LLAMA3_CHAT_TOOL;

}  // namespace

TEST_CASE("llama3-chat on a terminal: streams, stops a reply on Ctrl-C, /stats, /reset, /exit", "[cli][chat]") {
  // A context long enough that the reply is still streaming when Ctrl-C comes.
  Pty pty({chat, "--model", chat_model().string(), "--temperature", "0", "--max-seq-len", "4096", "--max-gen-len",
           "4000", "--threads", "1"});
  std::size_t at = pty.wait_for("> ", pty.wait_for("llama3-chat: "));
  CHECK(pty.output().find("loading") != std::string::npos);  // progress while loading

  // Ctrl-C at the prompt does not leave the program.
  pty.type("\x03");
  at = pty.wait_for("> ", at + 2);

  pty.type("Tell me a very long story.\n");
  const std::size_t reply = pty.wait_for("Tell me a very long story.", at) + 28;
  pty.wait_for_bytes(reply, 64);  // the reply is streaming
  pty.type("\x03");
  at = pty.wait_for("[stopped]", reply);
  at = pty.wait_for("tok/s]", at);  // prefill and decode speeds after the reply
  at = pty.wait_for("> ", at);

  pty.type("/stats\n");
  at = pty.wait_for("turns 1, tokens generated ", at);
  const std::size_t gen_at = at + 26;
  const long generated = std::stol(pty.output().substr(gen_at, pty.output().find(',', gen_at) - gen_at));
  CHECK(generated > 0);
  CHECK(generated < 4000);  // it really was stopped

  pty.type("/reset\n");
  at = pty.wait_for("(conversation reset)", at);
  pty.type("/stats\n");
  at = pty.wait_for("context in use", at);
  pty.type("/nonsense\n");
  at = pty.wait_for("unknown command /nonsense", at);
  pty.type("/exit\n");
  CHECK(pty.wait_exit() == 0);
}

TEST_CASE("llama3-chat keeps the conversation when a line cannot be sent, says why and asks again", "[cli][chat]") {
  Pty pty({chat, "--model", chat_model().string(), "--temperature", "0", "--max-seq-len", "96", "--max-gen-len", "8",
           "--threads", "1"});
  std::size_t at = pty.wait_for("> ", pty.wait_for("llama3-chat: "));
  pty.type("Hello there.\n");
  at = pty.wait_for("> ", pty.wait_for("tok/s]", at));
  pty.type("caf\xe9 au lait\n");  // Latin-1, not UTF-8
  at = pty.wait_for("(not sent: ", at);
  CHECK_THAT(pty.output().substr(at, 200), Contains("invalid UTF-8") && Contains("the conversation is as it was"));
  at = pty.wait_for("> ", at);
  std::string long_line;
  for (int i = 0; i < 200; ++i) long_line += "word ";
  pty.type(long_line + "\n");  // more than the 96-token context
  at = pty.wait_for("(not sent: ", at);
  CHECK_THAT(pty.output().substr(at, 200), Contains("cannot fit max_seq_len 96"));
  at = pty.wait_for("> ", at);
  pty.type("And now?\n");  // the conversation goes on from the first turn: its tokens are reused
  const std::size_t stats = pty.wait_for("tok/s]", at);
  CHECK(pty.output().substr(at, stats - at).find("(0 reused)") == std::string::npos);
  pty.type("/stats\n");
  at = pty.wait_for("turns 2,", stats);
  pty.type("/exit\n");
  CHECK(pty.wait_exit() == 0);
}

TEST_CASE("llama3-chat and llama3-complete check every option, naming it and what it takes", "[cli][chat]") {
  const std::string model = " --model " + chat_model().string() + " --prompt Hi --max-gen-len 4 --threads 1";
  for (const auto& [option, says] : std::vector<std::pair<std::string, std::string>>{
           {"--seed -1", "--seed: -1: expected an integer from 0 to 18446744073709551615"},
           {"--seed 99999999999999999999", "--seed"},
           {"--temperature nan", "--temperature: nan: expected a number in [0, 1000000]"},
           {"--temperature inf", "--temperature: inf"},
           {"--temperature -1", "--temperature: -1"},
           {"--top-p nan", "--top-p: nan: expected a number in (0, 1]"},
           {"--top-p 2", "--top-p: 2"},
           {"--top-p 0", "--top-p: 0"},
           {"--top-p -1", "--top-p: -1"},
           {"--min-p nan", "--min-p: nan: expected a number in [0, 1]"},
           {"--top-k -1", "--top-k: -1: expected an integer from 0"},
           {"--repeat-penalty 0", "--repeat-penalty: 0: expected a number in (0, 1000000]"},
           {"--threads 100000", "--threads: 100000: expected an integer from 0 to 1024"},
           {"--threads -1", "--threads: -1"},
           {"--max-gen-len 0", "--max-gen-len: 0: expected an integer from 1"},
           {"--max-seq-len 1.5", "--max-seq-len: 1.5: expected an integer"}}) {
    INFO(option);
    const Run r = run(chat + model + " " + option);
    CHECK(r.status != 0);
    CHECK_THAT(r.err + r.out, Contains(says));
    CHECK_THAT(r.err + r.out, !Contains("1.79769") && !Contains("At Most"));
  }
  const std::string complete = std::string(LLAMA3_COMPLETE_TOOL) + " --model " + chat_model().string() +
                               " --max-gen-len 4 --threads 1";
  for (const std::string option : {"--temperature inf", "--top-p 2", "--top-p -1", "--top-p nan", "--seed -1",
                                   "--max-batch-size 0"}) {
    INFO(option);
    const Run r = run(complete + " " + option);
    CHECK(r.status != 0);
    CHECK_THAT(r.err + r.out, Contains(option.substr(0, option.find(' ')) + ": "));
  }
}

TEST_CASE("llama3-chat's sampling options do what they say", "[cli][chat]") {
  const std::string base = chat + " --model " + chat_model().string() + " --prompt 'Tell me something.' "
                           "--max-gen-len 16 --threads 1";
  const Run greedy = run(base + " --temperature 0");
  const Run top1 = run(base + " --temperature 1.5 --top-k 1 --seed 3");  // one candidate left: greedy
  const Run min1 = run(base + " --temperature 1.5 --min-p 1 --seed 4");   // only the best has p >= 1 x the best's
  const Run a = run(base + " --temperature 1.5 --top-p 1 --seed 1"), b = run(base + " --temperature 1.5 --top-p 1 --seed 2");
  for (const Run* r : {&greedy, &top1, &min1, &a, &b}) {
    REQUIRE(r->status == 0);
    REQUIRE(r->out.size() > 1);
  }
  CHECK(top1.out == greedy.out);
  CHECK(min1.out == greedy.out);
  CHECK(a.out != b.out);  // a random model at temperature 1.5 over 128k tokens: two seeds, two replies
  CHECK(a.out != greedy.out);

  Llama<> llama = Llama<>::build(chat_model(), "", 2048, 1);
  GenerateOptions o;
  o.sampling.temperature = 1.5f;
  o.sampling.top_p = 1.0f;
  o.sampling.repetition_penalty = 1.3f;
  o.sampling.seed = 1;
  const auto expected = llama.chat_completion({{{Role::user, "Tell me something."}}}, 16, o);
  const Run penalised = run(base + " --temperature 1.5 --top-p 1 --repeat-penalty 1.3 --seed 1");
  REQUIRE(penalised.status == 0);
  CHECK(penalised.out == expected[0].generation.content + "\n");
}

TEST_CASE("llama3-chat drops the oldest turns when the conversation outgrows the context, and says so", "[cli][chat]") {
  Pty pty({chat, "--model", chat_model().string(), "--temperature", "0", "--max-seq-len", "128", "--max-gen-len", "24",
           "--system", "You are a pirate.", "--threads", "1"});
  std::size_t at = pty.wait_for("> ", pty.wait_for("llama3-chat: "));
  bool dropped = false;
  int reused_turns = 0;
  for (int turn = 0; turn < 10 && !dropped; ++turn) {
    pty.type("Question number " + std::to_string(turn) + ": what now?\n");
    const std::size_t stats = pty.wait_for("tok/s]", at);
    const std::string turn_out = pty.output().substr(at, stats - at);
    dropped = turn_out.find("(dropped ") != std::string::npos;
    if (turn > 0 && !dropped && turn_out.find(" reused)") != std::string::npos &&
        turn_out.find("(0 reused)") == std::string::npos) {
      ++reused_turns;  // a later turn prefills only its own tokens
    }
    at = pty.wait_for("> ", stats);
  }
  CHECK(dropped);
  CHECK(pty.output().find("old message") != std::string::npos);
  CHECK(reused_turns > 0);
  pty.type("/exit\n");
  CHECK(pty.wait_exit() == 0);
}

TEST_CASE("llama3-chat --lookup reports the drafts it verified after each reply", "[cli][chat][lookup]") {
  Pty pty({chat, "--model", chat_model().string(), "--temperature", "0", "--max-gen-len", "64", "--lookup", "4",
           "--threads", "1"});
  std::size_t at = pty.wait_for("> ", pty.wait_for("llama3-chat: "));
  pty.type("Say it again and again: again and again and again.\n");
  at = pty.wait_for("drafts accepted in ", at);
  at = pty.wait_for("passes]", at);
  pty.type("/exit\n");
  CHECK(pty.wait_exit() == 0);
}

TEST_CASE("llama3-chat --dialog and --prompt print the reply of chat_completion and exit", "[cli][chat]") {
  const fs::path dir = test::temp_dir("chat-dialog");
  const fs::path dialog = dir / "dialog.json";
  std::ofstream(dialog) << R"([{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "What is the capital of France?"}])";
  const Run r = run(chat + " --model " + chat_model().string() + " --dialog " + dialog.string() +
                    " --temperature 0 --max-gen-len 20 --threads 1");
  REQUIRE(r.status == 0);

  Llama<> llama = Llama<>::build(chat_model(), "", 2048, 1);
  GenerateOptions o;
  o.sampling.temperature = 0;
  const Dialog d = {{Role::system, "Be brief."}, {Role::user, "What is the capital of France?"}};
  const auto expected = llama.chat_completion({d}, 20, o);
  CHECK(r.out == expected[0].generation.content + "\n");

  const Run p = run(chat + " --model " + chat_model().string() + " --system 'Be brief.' --prompt 'What is the capital "
                    "of France?' --temperature 0 --max-gen-len 20 --threads 1");
  REQUIRE(p.status == 0);
  CHECK(p.out == r.out);

  // The same seed gives the same sampled reply, with prompt lookup too.
  const std::string sampled = chat + " --model " + chat_model().string() + " --prompt Hi --seed 9 --max-gen-len 12";
  const Run once = run(sampled), again = run(sampled), looked_up = run(sampled + " --lookup 5");
  REQUIRE(once.status == 0);
  REQUIRE(again.status == 0);
  REQUIRE(looked_up.status == 0);
  REQUIRE(once.out.size() > 1);
  CHECK(again.out == once.out);
  CHECK(looked_up.out == once.out);
  const Run lookup = run(chat + " --model " + chat_model().string() + " --system 'Be brief.' --prompt 'What is the "
                         "capital of France?' --temperature 0 --max-gen-len 20 --threads 1 --lookup 7");
  CHECK(lookup.out == r.out);
  const Run too_many = run(chat + " --model " + chat_model().string() + " --prompt Hi --lookup 8");
  CHECK(too_many.status != 0);
  CHECK_THAT(too_many.err + too_many.out, Contains("--lookup"));

  std::ofstream(dir / "bad.json") << R"([{"role": "user"}])";
  const Run bad = run(chat + " --model " + chat_model().string() + " --dialog " + (dir / "bad.json").string());
  CHECK(bad.status == 1);
  CHECK_THAT(bad.err, Contains("bad.json") && Contains("message 0"));
}

TEST_CASE("llama3-chat and llama3-complete reject a missing or broken model folder, saying what was expected", "[cli][chat]") {
  for (const std::string& tool : {chat, std::string(LLAMA3_COMPLETE_TOOL)}) {
    INFO(tool);
    const Run missing = run(tool + " --model /nonexistent/model");
    CHECK(missing.status == 1);
    CHECK_THAT(missing.err, Contains("/nonexistent/model") && Contains("params.json") && Contains("config.json"));

    const fs::path broken = test::temp_dir("chat-broken");
    std::ofstream(broken / "config.json") << "{\"hidden_size\": 64,";
    fs::copy_file(test::data_path("tokenizer.model"), broken / "tokenizer.model");
    const Run b = run(tool + " --model " + broken.string());
    CHECK(b.status == 1);
    CHECK_THAT(b.err, Contains("config.json"));

    // A model without a tokenizer beside it.
    const fs::path no_tok = test::temp_dir("chat-no-tokenizer");
    for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(chat_model() / f, no_tok / f);
    const Run t = run(tool + " --model " + no_tok.string());
    CHECK(t.status == 1);
    CHECK_THAT(t.err, Contains("tokenizer.model") && Contains("--tokenizer"));
  }
  const Run help = run(chat + " --help");
  CHECK(help.status == 0);
  CHECK_THAT(help.out, Contains("--max-seq-len") && Contains("/reset"));
}

TEST_CASE("llama3-complete runs Meta's example prompts, as text_completion completes them", "[cli]") {
  for (const std::string sampling : {"--temperature 0", "--temperature 0.8 --top-p 0.5 --seed 7"}) {
    INFO(sampling);
    const Run r = run(std::string(LLAMA3_COMPLETE_TOOL) + " --model " + chat_model().string() +
                      " --max-gen-len 8 --threads 1 " + sampling);
    REQUIRE(r.status == 0);
    CHECK_THAT(r.out, Contains("I believe the meaning of life is\n> ") && Contains("cheese =>\n> ") &&
                          Contains("=================================="));
    // The same completions from the library, with the tool's defaults (max_seq_len 128, 4 rows).
    Llama<> llama = Llama<>::build(chat_model(), "", 128, 4, sampling.find("seed") != std::string::npos ? 7 : 1);
    const bool greedy = sampling == "--temperature 0";
    const auto got = llama.text_completion({"I believe the meaning of life is",
                                            "Simply put, the theory of relativity states that ",
                                            "A brief message congratulating the team on the launch:\n\n        Hi "
                                            "everyone,\n\n        I just ",
                                            "Translate English to French:\n\n        sea otter => loutre de mer\n"
                                            "        peppermint => menthe poivrée\n        plush girafe => girafe "
                                            "peluche\n        cheese =>"},
                                           greedy ? 0.0f : 0.8f, greedy ? 0.9f : 0.5f, 8);
    for (const auto& c : got) CHECK_THAT(r.out, Contains("\n> " + c.generation + "\n\n=="));
  }
}

TEST_CASE("the README's chat program runs and says what the library's session says", "[cli][chat]") {
  const Run r = run("printf 'Hello!\\nAnd again?\\n' | " + std::string(LLAMA3_README_CHAT) + " " + chat_model().string());
  REQUIRE(r.status == 0);
  Llama<> llama = Llama<>::build(chat_model(), "", 2048, 1);
  ChatSession<> session(llama, 512, "You are a helpful assistant.");
  const SamplingParams sampling;  // the program's: Meta's defaults, seed 0
  const std::string first = session.say("Hello!", sampling);
  const std::string second = session.say("And again?", sampling);
  CHECK(r.out == "> " + first + "\n> " + second + "\n> ");
}

TEST_CASE("llama3-chat --quantize q8_0 chats with the quantized model", "[cli][chat][quant]") {
  const Run r = run(chat + " --model " + chat_model().string() + " --prompt Hi --temperature 0 --max-gen-len 8 "
                    "--quantize q8_0 --threads 1");
  REQUIRE(r.status == 0);
  CHECK(r.out.size() > 1);
}

// A Hugging Face folder as published: config.json, model.safetensors and the checkpoint's own tokenizer.json (the
// real one, which scripts/setup.sh fetches). Hidden from the default run ([.]): tests/CMakeLists.txt registers it
// on its own, so that ctest reports it skipped, not passed, where the file is missing.
TEST_CASE("Llama::build and llama3-chat find a checkpoint's own tokenizer.json in its folder",
          "[.][cli][chat][hf_tokenizer_json]") {
  const fs::path json = test::hf_tokenizer_json_path();
  if (!fs::exists(json)) {
    std::cout << "skipped: no " << json << " (scripts/setup.sh fetches it with npm)\n";
    return;
  }
  const fs::path dir = test::temp_dir("hf-folder");
  for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(chat_model() / f, dir / f);
  fs::copy_file(json, dir / "tokenizer.json");
  CHECK(find_tokenizer(dir) == dir / "tokenizer.json");
  Llama<> hf = Llama<>::build(dir, "", 512, 1);
  Llama<> meta = Llama<>::build(chat_model(), "", 512, 1);  // the same weights beside Meta's tokenizer.model
  const Dialog d = {{Role::system, "Be brief."}, {Role::user, "Où est la gare ? 🚉 Answer in 3 words."}};
  CHECK(hf.formatter().encode_dialog_prompt(d) == meta.formatter().encode_dialog_prompt(d));
  GenerateOptions o;
  o.sampling.temperature = 0;
  const std::string expected = meta.chat_completion({d}, 16, o)[0].generation.content;
  CHECK(hf.chat_completion({d}, 16, o)[0].generation.content == expected);
  const Run r = run(chat + " --model " + dir.string() + " --system 'Be brief.' --prompt 'Où est la gare ? 🚉 Answer "
                    "in 3 words.' --temperature 0 --max-gen-len 16 --threads 1");
  REQUIRE(r.status == 0);
  CHECK(r.out == expected + "\n");
}

// Hostile and careless input, class by class: out-of-bounds offsets, overlapping entries, special files, failing
// threads, caches larger than the machine, gigabytes from small files, repeated JSON keys. Each is an Error that
// says what is wrong, in memory proportional to the input, never a crash or a hang.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "llama3/core/memory.hpp"
#include "llama3/core/parallel.hpp"
#include "llama3/core/thread_pool.hpp"
#include "llama3/generation/llama.hpp"
#include "llama3/io/checkpoint.hpp"
#include "llama3/io/pickle.hpp"
#include "llama3/model/synthetic.hpp"
#include "llama3/model/transformer.hpp"
#include "support/checkpoint_writer.hpp"
#include "support/gguf_writer.hpp"
#include "support/hostile_files.hpp"
#include "support/model_fixtures.hpp"
#include "support/small_model.hpp"

using namespace llama3;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool sanitized = true;  // ASan's shadow and quarantine make resident memory say little about ours
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
#else
constexpr bool sanitized = false;
#endif

// Reads one of "VmRSS:" or "VmHWM:" of /proc/self/status, in bytes.
std::uint64_t status_bytes(const char* field) {
  const std::string s = memory_detail::read_small_file("/proc/self/status");
  const auto at = s.find(field);
  if (at == std::string::npos) return 0;
  return memory_detail::parse_u64(std::string_view(s).substr(at + std::strlen(field))).value_or(0) * 1024;
}

// What a function did in a child process: the Error it threw (or "" if none), how far its resident memory rose
// above where it started, and whether it ran past the timeout (then it was killed).
struct ChildResult {
  bool timed_out = false;
  bool threw = false;
  std::string message;
  std::uint64_t peak_growth = 0;
};

ChildResult run_in_child(const std::function<void()>& f, int timeout_seconds = 20) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    if (FILE* clear = std::fopen("/proc/self/clear_refs", "w")) {  // the high-water mark starts here
      std::fputs("5", clear);
      std::fclose(clear);
    }
    const std::uint64_t before = status_bytes("VmRSS:");
    std::string out = "ok";
    try {
      f();
    } catch (const std::exception& e) {
      out = std::string("error ") + e.what();
    }
    const std::uint64_t peak = status_bytes("VmHWM:");
    out = std::to_string(peak > before ? peak - before : 0) + " " + out;
    ssize_t written = ::write(fds[1], out.data(), out.size());
    (void)written;
    ::_exit(0);
  }
  ::close(fds[1]);
  ChildResult r;
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  ::waitpid(pid, nullptr, 0);
  if (!r.timed_out) {
    const auto space = got.find(' ');
    REQUIRE(space != std::string::npos);
    r.peak_growth = std::stoull(got.substr(0, space));
    r.message = got.substr(space + 1);
    r.threw = r.message.starts_with("error ");
    if (r.threw) r.message.erase(0, 6);
  }
  return r;
}

void read_with(const std::string& target, const std::string& bytes) {
  if (target == "pth") {
    io::read_torch_checkpoint(bytes, nullptr, "hostile.pth");
  } else if (target == "pickle") {
    io::pickle::Reader(bytes, "hostile.pkl").run();
  } else if (target == "gguf") {
    io::read_gguf(bytes, nullptr, "hostile.gguf");
  } else {
    io::read_safetensors(bytes, nullptr, "hostile.safetensors");
  }
}

// A small Hugging Face model folder, written once.
const fs::path& small_hf_model() {
  static const fs::path dir = [] {
    const fs::path d = test::temp_dir("hostile-model");
    ModelParams p = test::small_llama3_params(64);
    p.vocab_size = 512;
    Checkpoint c = synthetic_checkpoint<float>(p, 3);
    io::write_hf_checkpoint(d, c);
    return d;
  }();
  return dir;
}

}  // namespace

TEST_CASE("every hostile input is an Error saying what is wrong, in memory bounded by its size", "[hostile]") {
  const auto inputs = test::hostile_inputs();
  REQUIRE(inputs.size() > 60);
  for (const test::HostileInput& in : inputs) {
    INFO(in.name << " (" << in.bytes.size() << " bytes)");
    CHECK_THROWS_WITH(read_with(in.target, in.bytes), Contains(in.error));
  }
  // The ones that asked for gigabytes, in a process of their own to measure: the budget, plus the allocator's slack.
  for (const test::HostileInput& in : inputs) {
    if (in.bytes.size() < (1u << 20)) continue;
    INFO(in.name << " (" << in.bytes.size() << " bytes)");
    const ChildResult r = run_in_child([&] { read_with(in.target, in.bytes); });
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.threw);
    CHECK_THAT(r.message, Contains(in.error));
    if (!sanitized) CHECK(r.peak_growth < io::pickle::memory_budget(in.bytes.size()) + (std::uint64_t{32} << 20));
  }
}

TEST_CASE("a legitimate pickle stays far inside the unpickler's budget", "[hostile][pth]") {
  for (const std::string& name : test::model_fixture_names()) {
    const MappedFile f(test::data_path("models/" + name + "/meta/consolidated.00.pth"));
    const io::ZipReader zip(f.bytes(), name);
    for (const auto& [entry, e] : zip.entries()) {
      if (!entry.ends_with("data.pkl")) continue;
      io::pickle::Reader r(zip.data(e), name);
      r.run();
      INFO(name << ": " << e.size << " bytes of pickle held " << r.bytes_held());
      CHECK(r.bytes_held() < 64 * e.size);                            // about 22 bytes a byte
      CHECK(r.bytes_held() < io::pickle::memory_budget(e.size) / 8);  // a 400 KB pickle would still fit
    }
  }
}

TEST_CASE("a GGUF metadata array nobody reads costs no memory", "[hostile][gguf]") {
  test::GgufWriter w;
  w.str("general.architecture", "llama");
  std::string items;
  test::GgufWriter::put<std::uint32_t>(items, static_cast<std::uint32_t>(io::GgufType::u8));
  test::GgufWriter::put<std::uint64_t>(items, 50u << 20);
  items += std::string(50u << 20, '\7');
  w.raw("big", io::GgufType::array, items);
  const std::string bytes = w.bytes();  // 50 MB: once 3.6 GB of values
  const ChildResult r = run_in_child([&] {
    const io::GgufFile g = io::read_gguf(bytes, nullptr, "big.gguf");
    if (g.find("big")->count != (50u << 20)) throw Error("wrong count");
  });
  REQUIRE_FALSE(r.timed_out);
  CHECK_FALSE(r.threw);
  if (!sanitized) CHECK(r.peak_growth < (std::uint64_t{8} << 20));
}

TEST_CASE("a GGUF of many tiny tensors or metadata pairs takes a few times its size, no more", "[hostile][gguf]") {
  for (const bool tensors : {true, false}) {
    INFO((tensors ? "tensors" : "metadata"));
    std::string g = "GGUF";
    const auto put = [&](auto v) { g.append(reinterpret_cast<const char*>(&v), sizeof v); };
    const auto str = [&](const std::string& x) {
      put(std::uint64_t{x.size()});
      g += x;
    };
    constexpr int n = 200000;
    put(std::uint32_t{3});
    put(std::uint64_t{tensors ? n : 0u});
    put(std::uint64_t{tensors ? 1u : n + 1u});
    str("general.alignment");
    put(std::uint32_t{4});
    put(std::uint32_t{1});
    for (int i = 0; i < n; ++i) {
      str(std::to_string(i));
      if (tensors) {  // one F32 value each, packed (alignment 1)
        put(std::uint32_t{1});
        put(std::uint64_t{1});
        put(std::uint32_t{0});
        put(std::uint64_t{4} * static_cast<std::uint64_t>(i));
      } else {
        put(std::uint32_t{0});  // a u8
        g += '\1';
      }
    }
    if (tensors) g += std::string(4u * n, '\0');
    const ChildResult r = run_in_child([&] {
      const io::GgufFile f = io::read_gguf(g, nullptr, "many.gguf");
      if ((tensors ? f.tensors.size() : f.metadata.size() - 1) != static_cast<std::size_t>(n)) throw Error("wrong count");
    });
    REQUIRE_FALSE(r.timed_out);
    CHECK_FALSE(r.threw);
    INFO(g.size() << " bytes: peak growth " << r.peak_growth);
    if (!sanitized) CHECK(r.peak_growth < 6 * g.size() + (std::uint64_t{4} << 20));  // measured: 4.5x
  }
}

TEST_CASE("a named pipe, a folder or a device where a file should be is an Error, at once", "[hostile][files]") {
  const fs::path model = small_hf_model();
  const auto copy = [&](const std::string& tag) {
    const fs::path d = test::temp_dir(tag);
    fs::copy(model, d, fs::copy_options::recursive);
    return d;
  };
  const auto fifo = [](const fs::path& p) {
    fs::remove(p);
    REQUIRE(::mkfifo(p.c_str(), 0600) == 0);
  };
  const auto load = [](const fs::path& d) {
    return [d] { load_checkpoint(d, {.max_seq_len = 16}); };
  };
  std::vector<std::pair<fs::path, std::function<void()>>> cases;
  {
    const fs::path d = copy("fifo-safetensors");
    fifo(d / "model.safetensors");
    cases.emplace_back(d / "model.safetensors", load(d));
  }
  {
    const fs::path d = copy("fifo-config");
    fifo(d / "config.json");
    cases.emplace_back(d / "config.json", load(d));
  }
  {
    const fs::path d = copy("fifo-shard");
    fs::rename(d / "model.safetensors", d / "model-00001-of-00001.safetensors");
    test::write_file(d / "model.safetensors.index.json",
                     R"({"weight_map": {"model.embed_tokens.weight": "model-00002-of-00002.safetensors"}})");
    fifo(d / "model-00002-of-00002.safetensors");
    cases.emplace_back(d / "model-00002-of-00002.safetensors", load(d));
  }
  {
    const fs::path d = test::temp_dir("fifo-meta");
    fs::copy_file(test::data_path("models/tiny-gqa/meta/params.json"), d / "params.json");
    fifo(d / "consolidated.00.pth");
    cases.emplace_back(d / "consolidated.00.pth", load(d));
    const fs::path p = test::temp_dir("fifo-params");
    fs::copy_file(test::data_path("models/tiny-gqa/meta/consolidated.00.pth"), p / "consolidated.00.pth");
    fifo(p / "params.json");
    cases.emplace_back(p / "params.json", load(p));
  }
  {
    const fs::path d = test::temp_dir("fifo-tokenizer");
    fifo(d / "tokenizer.model");
    cases.emplace_back(d / "tokenizer.model", [d] { Tokenizer t(d / "tokenizer.model"); });
    cases.emplace_back("/dev/zero", [] { Tokenizer t(fs::path("/dev/zero")); });
    cases.emplace_back(d, [d] { MappedFile f(d); });
  }
  for (const auto& [path, f] : cases) {
    INFO(path);
    const ChildResult r = run_in_child(f, 10);
    REQUIRE_FALSE(r.timed_out);  // a blocking open of a pipe waits for a writer forever
    CHECK(r.threw);
    CHECK_THAT(r.message, Contains(path.filename().string()) && Contains("not a regular file"));
  }
}

TEST_CASE("thread counts beyond reason, and threads the system refuses, are Errors", "[hostile][threads]") {
  CHECK_THROWS_WITH(ThreadPool(100000), Contains("100000 threads") && Contains("at most 1024"));
  CHECK_THROWS_WITH(parallel_for(10, 5000, [](std::size_t) {}), Contains("at most 1024"));
  if (sanitized) return;  // ASan needs the address space a limit takes away
  // An address-space limit just above what the process maps: the threads' stacks cannot be had.
  for (const bool pool : {true, false}) {
    const ChildResult r = run_in_child([pool] {
      rlimit lim{};
      ::getrlimit(RLIMIT_AS, &lim);
      const std::string s = memory_detail::read_small_file("/proc/self/status");
      const auto vm = memory_detail::parse_u64(std::string_view(s).substr(s.find("VmSize:") + 7)).value_or(0) * 1024;
      lim.rlim_cur = vm + (std::uint64_t{4} << 20);
      ::setrlimit(RLIMIT_AS, &lim);
      if (pool) {
        ThreadPool p(64);
      } else {
        parallel_for(64, 64, [](std::size_t) { std::this_thread::sleep_for(std::chrono::milliseconds(1)); });
      }
    });
    INFO((pool ? "ThreadPool" : "parallel_for"));
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.threw);  // not std::terminate: the child reported back
    CHECK_THAT(r.message, Contains("cannot start thread") && Contains("fewer threads"));
  }
}

TEST_CASE("the KV cache is checked against the memory there is, and costs only the positions used", "[hostile][kv]") {
  ModelParams p = test::small_llama3_params(131072);
  p.vocab_size = 512;
  using T = Transformer<>;
  const std::uint64_t bytes = T::kv_cache_bytes(p);  // 2 x 2 layers x 131072 x 32 floats
  CHECK(bytes == 2ull * 2 * 131072 * 32 * 4);
  CHECK_NOTHROW(T::check_kv_cache_fits(p, bytes, bytes));
  CHECK_NOTHROW(T::check_kv_cache_fits(p, bytes, std::nullopt));
  CHECK_THROWS_WITH(T::check_kv_cache_fits(p, bytes, bytes / 3),
                    Contains("needs 64.0 MiB") && Contains("21.3 MiB of memory is available") &&
                        Contains("max_seq_len (--max-seq-len) of at most 43690 fits") &&
                        Contains("--kv-cache bf16) would need 32.0 MiB"));
  // The 8B shape at Llama 3.1's context: 32 GiB of f32 cache.
  ModelParams big = params_of<presets::Llama3_1_8B>(131072);
  CHECK(T::kv_cache_bytes(big) == 32ull << 30);
  CHECK_THROWS_WITH(T::check_kv_cache_fits(big, T::kv_cache_bytes(big), 16ull << 30), Contains("needs 32.0 GiB"));
  // Sizes past 64 bits saturate: the validated limits allow 2^74 bytes.
  ModelParams absurd = p;
  absurd.n_layers = 4096;
  absurd.dim = 1 << 20;
  absurd.n_heads = absurd.n_kv_heads = 1 << 14;
  absurd.max_batch_size = 1 << 16;
  absurd.max_seq_len = 1 << 24;
  CHECK(T::kv_cache_bytes(absurd) == UINT64_MAX);

  // Loading such a model is the Error, before any memory is touched.
  ModelParams huge = test::small_llama3_params(1 << 24, 1 << 16);
  huge.vocab_size = 512;
  CHECK_THROWS_WITH(Transformer<>(synthetic_checkpoint<float>(huge, 1), 1), Contains("KV cache") && Contains("needs"));

  // A long context reserved, a short prompt run: resident memory grows by what the prompt used, not the 512 MiB
  // of cache (nor the RoPE table's 2^21 positions, 128 MiB eagerly).
  ModelParams longer = test::small_llama3_params(1 << 20);
  longer.vocab_size = 512;
  Checkpoint c = synthetic_checkpoint<float>(longer, 1);
  const ChildResult r = run_in_child([&] {
    Transformer<> model(std::move(c), 1);
    const std::vector<TokenId> prompt(32, 7);
    model.forward(prompt, 0, Logits::last);
  });
  REQUIRE_FALSE(r.timed_out);
  CHECK_FALSE(r.threw);
  INFO("peak growth " << r.peak_growth);
  if (!sanitized) CHECK(r.peak_growth < (std::uint64_t{48} << 20));
}

TEST_CASE("a JSON key given twice is an Error naming it, in every file we read", "[hostile][json]") {
  const std::string params = R"({"dim": 64, "n_layers": 2, "n_heads": 4, "vocab_size": 512, "dim": 128})";
  CHECK_THROWS_WITH(io::read_meta_params(params, "params.json"), Contains("params.json") && Contains("\"dim\"") &&
                                                                     Contains("appears twice"));
  const std::string nested = R"({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
      "vocab_size": 512, "intermediate_size": 128,
      "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "factor": 32.0}})";
  CHECK_THROWS_WITH(io::read_hf_config(nested, "config.json"), Contains("\"factor\"") && Contains("rope_scaling"));
  CHECK_THROWS_WITH(Tokenizer::from_hf_json(R"({"model": {"vocab": {"a": 0, "a": 1}}})", "tokenizer.json"),
                    Contains("\"a\"") && Contains("model.vocab"));
  const fs::path d = test::temp_dir("json-index");
  fs::copy(small_hf_model(), d, fs::copy_options::recursive);
  fs::rename(d / "model.safetensors", d / "model-00001-of-00001.safetensors");
  test::write_file(d / "model.safetensors.index.json",
                   R"({"weight_map": {"x": "model-00001-of-00001.safetensors"}, "weight_map": {}})");
  CHECK_THROWS_WITH(load_checkpoint(d), Contains("index.json") && Contains("weight_map"));
  // Not a repetition: the same key in two objects.
  CHECK_NOTHROW(io::read_hf_config(R"({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
      "vocab_size": 512, "intermediate_size": 128, "x": {"hidden_size": 1}})", "config.json"));
}

TEST_CASE("a tokenizer.model whose ranks outrun its lines asks for no memory", "[hostile][tokenizer]") {
  const std::string file = std::string(1u << 20, '\n') + "AA== 1000000\n";
  const ChildResult r = run_in_child([&] { Tokenizer::from_tiktoken(file, "tokenizer.model"); });
  REQUIRE_FALSE(r.timed_out);
  CHECK_THAT(r.message, Contains("rank 1000000 out of range") && Contains("1 token lines"));
  if (!sanitized) CHECK(r.peak_growth < (std::uint64_t{8} << 20));
}

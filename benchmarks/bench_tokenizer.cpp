// Tokenizer throughput: encode MB/s and tokens/s, one thread and several threads over a batch of documents.
//
//   sh ../shared/tools/build_corpus.sh /tmp/corpus.txt       # the 28 MB English + code corpus
//   build/release/benchmarks/bench_tokenizer --corpus=/tmp/corpus.txt
//
// Flags of our own (the rest go to Google Benchmark, e.g. --benchmark_filter=Encode):
//   --corpus=FILE        the text to encode (required for the corpus benchmarks)
//   --tokenizer=FILE     tokenizer.model or tokenizer.json (default: tests/data/tokenizer.model)
//   --multilingual=auto  also encode the translations of coreutils, dpkg, bash, tar, grep, sed... in every language
//                        installed under /usr/share/locale (read from their .mo files); or a text FILE
//   --doc-size=BYTES     the corpus is cut into documents of about this size for the batch benchmarks (65536)
// Each benchmark runs 5 repetitions; Google Benchmark reports their median.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "llama3/tokenizer.hpp"
#include "llama3/tokenizer/split_pcre2.hpp"

namespace fs = std::filesystem;

namespace {

struct Texts {
  std::string name;
  std::string text;
  std::vector<std::string_view> documents;
};

std::string tokenizer_path = LLAMA3_DEFAULT_TOKENIZER;
std::unique_ptr<llama3::Tokenizer> tokenizer;
std::vector<Texts> corpora;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Cuts text into documents of about `size` bytes, at line ends.
std::vector<std::string_view> documents_of(std::string_view text, std::size_t size) {
  std::vector<std::string_view> out;
  for (std::size_t at = 0; at < text.size();) {
    std::size_t end = std::min(text.size(), at + size);
    const std::size_t nl = text.find('\n', end);
    end = nl == std::string_view::npos ? text.size() : nl + 1;
    out.push_back(text.substr(at, end - at));
    at = end;
  }
  return out;
}

// The translated strings (msgstr) of a GNU .mo file.
void append_mo_translations(const fs::path& p, std::string& out) {
  const std::string mo = read_file(p);
  const auto u32 = [&](std::size_t at) {
    std::uint32_t v = 0;
    if (at + 4 <= mo.size()) std::memcpy(&v, mo.data() + at, 4);
    return v;
  };
  if (u32(0) != 0x950412deu) return;  // big-endian .mo files do not occur on x86 Debian
  const std::uint32_t n = u32(8), translations = u32(16);
  for (std::uint32_t i = 1; i < n; ++i) {  // entry 0 is the header
    const std::uint32_t len = u32(translations + 8 * i), off = u32(translations + 8 * i + 4);
    if (static_cast<std::size_t>(off) + len > mo.size()) return;
    std::string_view s(mo.data() + off, len);
    for (std::size_t k = 0; k <= s.size(); ++k) {  // plural forms are separated by NUL
      const std::size_t end = std::min(s.find('\0', k), s.size());
      const std::string_view form = s.substr(k, end - k);
      if (!form.empty() && llama3::utf8::is_valid(form)) {
        out += form;
        out += '\n';
      }
      k = end;
    }
  }
}

std::string multilingual_text() {
  std::vector<fs::path> files;
  const fs::path root = "/usr/share/locale";
  if (fs::exists(root)) {
    for (const auto& lang : fs::directory_iterator(root)) {
      for (const char* domain : {"coreutils", "dpkg", "bash", "tar", "grep", "sed", "findutils", "diffutils"}) {
        const fs::path p = lang.path() / "LC_MESSAGES" / (std::string(domain) + ".mo");
        if (fs::exists(p)) files.push_back(p);
      }
    }
  }
  std::sort(files.begin(), files.end());
  std::string text;
  for (const auto& f : files) append_mo_translations(f, text);
  return text;
}

void set_counters(benchmark::State& state, std::size_t bytes, std::size_t tokens) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
  state.counters["tokens/s"] =
      benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["bytes/token"] = static_cast<double>(bytes) / static_cast<double>(std::max<std::size_t>(tokens, 1));
}

// The whole text as one call of encode(): Meta's chunking, one thread.
void BM_Encode(benchmark::State& state, const Texts* t) {
  std::size_t tokens = 0;
  for (auto _ : state) {
    const auto ids = tokenizer->encode(t->text, false, false);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  set_counters(state, t->text.size(), tokens);
}

// The same text cut into documents, encoded by encode_batch on state.range(0) threads.
void BM_EncodeBatch(benchmark::State& state, const Texts* t) {
  const auto threads = static_cast<unsigned>(state.range(0));
  std::size_t tokens = 0;
  for (auto _ : state) {
    const auto ids = tokenizer->encode_batch(t->documents, false, false, {}, {}, threads);
    tokens = 0;
    for (const auto& d : ids) tokens += d.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.counters["threads"] = threads;
  state.counters["documents"] = static_cast<double>(t->documents.size());
  set_counters(state, t->text.size(), tokens);
}

// The pre-tokenizer alone: the fast scanner against the PCRE2 reference.
template <class Splitter>
void BM_Split(benchmark::State& state, const Texts* t) {
  const Splitter split;
  std::size_t pieces = 0;
  for (auto _ : state) {
    pieces = 0;
    split(t->text, [&](std::string_view p) {
      ++pieces;
      benchmark::DoNotOptimize(p.data());
    });
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * t->text.size()));
  state.counters["pieces"] = static_cast<double>(pieces);
}

// Runs of one character: time must grow linearly with the length (compare the /1M and /4M rows).
void BM_EncodeRun(benchmark::State& state, char c) {
  const std::string text(static_cast<std::size_t>(state.range(0)), c);
  std::size_t tokens = 0;
  for (auto _ : state) {
    const auto ids = tokenizer->encode(text, false, false);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  set_counters(state, text.size(), tokens);
}

void BM_LoadTokenizer(benchmark::State& state) {
  for (auto _ : state) {
    const llama3::Tokenizer t(tokenizer_path);
    benchmark::DoNotOptimize(t.n_words());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string corpus_path, multilingual;
  std::size_t doc_size = 65536;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a.starts_with("--corpus=")) {
      corpus_path = a.substr(9);
    } else if (a.starts_with("--tokenizer=")) {
      tokenizer_path = a.substr(12);
    } else if (a.starts_with("--multilingual=")) {
      multilingual = a.substr(15);
    } else if (a.starts_with("--doc-size=")) {
      doc_size = std::stoul(std::string(a.substr(11)));
    } else {
      rest.push_back(argv[i]);
    }
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());

  try {
    tokenizer = std::make_unique<llama3::Tokenizer>(tokenizer_path);
    if (!corpus_path.empty()) corpora.push_back({"corpus", read_file(corpus_path), {}});
    if (multilingual == "auto") {
      corpora.push_back({"multilingual", multilingual_text(), {}});
    } else if (!multilingual.empty()) {
      corpora.push_back({"multilingual", read_file(multilingual), {}});
    }
  } catch (const std::exception& e) {
    std::cerr << "bench_tokenizer: " << e.what() << "\n";
    return 1;
  }
  if (corpus_path.empty()) {
    std::cerr << "bench_tokenizer: no --corpus=FILE: only the synthetic benchmarks run. Build the 28 MB corpus with\n"
                 "  sh ../shared/tools/build_corpus.sh /tmp/corpus.txt\n";
  }
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  for (auto& c : corpora) {
    c.documents = documents_of(c.text, doc_size);
    std::size_t ascii = 0;
    for (const char ch : c.text) ascii += static_cast<unsigned char>(ch) < 0x80;
    benchmark::AddCustomContext(c.name, std::to_string(c.text.size()) + " bytes, " +
                                            std::to_string(c.documents.size()) + " documents, " +
                                            std::to_string(100 - 100 * ascii / std::max<std::size_t>(c.text.size(), 1)) +
                                            "% non-ASCII bytes");
    benchmark::RegisterBenchmark(("Encode/" + c.name).c_str(), BM_Encode, &c)
        ->Unit(benchmark::kMillisecond)->Repetitions(5)->ReportAggregatesOnly(true);
    auto* batch = benchmark::RegisterBenchmark(("EncodeBatch/" + c.name).c_str(), BM_EncodeBatch, &c);
    for (unsigned t = 1; t <= hw; t *= 2) batch->Arg(t);
    if ((hw & (hw - 1)) != 0) batch->Arg(hw);
    batch->Unit(benchmark::kMillisecond)->UseRealTime()->Repetitions(5)->ReportAggregatesOnly(true);
    benchmark::RegisterBenchmark(("Split/fast/" + c.name).c_str(), BM_Split<llama3::FastSplitter>, &c)
        ->Unit(benchmark::kMillisecond)->Repetitions(5)->ReportAggregatesOnly(true);
    benchmark::RegisterBenchmark(("Split/pcre2/" + c.name).c_str(), BM_Split<llama3::Pcre2Splitter>, &c)
        ->Unit(benchmark::kMillisecond)->Repetitions(5)->ReportAggregatesOnly(true);
  }
  for (const char c : {'a', '1', ' '}) {
    benchmark::RegisterBenchmark((std::string("EncodeRun/'") + c + "'").c_str(), BM_EncodeRun, c)
        ->Arg(1 << 20)->Arg(4 << 20)->Unit(benchmark::kMillisecond)->Repetitions(3)->ReportAggregatesOnly(true);
  }
  benchmark::RegisterBenchmark("LoadTokenizer", BM_LoadTokenizer)->Unit(benchmark::kMillisecond);
  benchmark::AddCustomContext("tokenizer", tokenizer_path);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}

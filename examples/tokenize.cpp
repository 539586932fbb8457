// llama3-tokenize: text to Llama 3 token ids and back, from the command line.
//
//   echo -n "Hello world" | llama3-tokenize --tokenizer tokenizer.model --bos
//   [128000,9906,1917]
//   llama3-tokenize --tokenizer tokenizer.model --jsonl --threads 2 < texts.jsonl > ids.jsonl
//   echo '[9906,1917]' | llama3-tokenize --tokenizer tokenizer.model --decode
#include <cstdio>
#include <exception>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <simdjson.h>

#include "cli.hpp"
#include "llama3/core/json.hpp"
#include "llama3/core/parallel.hpp"
#include "llama3/tokenizer.hpp"

namespace {

using llama3::TokenId;

struct Options {
  std::string tokenizer;
  bool bos = false, eos = false, jsonl = false, decode = false;
  std::string allowed = "none", disallowed = "none", names = "llama3";
  unsigned threads = 0;
};

// "all", "none", or a comma-separated list of special-token names.
llama3::SpecialSet parse_special_set(const std::string& s) {
  if (s == "all") return llama3::SpecialSet::all();
  if (s == "none" || s.empty()) return {};
  std::vector<std::string> names;
  std::stringstream in(s);
  for (std::string name; std::getline(in, name, ',');) names.push_back(name);
  return llama3::SpecialSet(std::move(names));
}

std::string read_all(std::FILE* f) {
  std::string data;
  char buf[1 << 16];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) data.append(buf, n);
  return data;
}

void write(std::string_view s) { std::fwrite(s.data(), 1, s.size(), stdout); }

void append_ids(std::string& out, const std::vector<TokenId>& ids) {
  out += '[';
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ids[i]);
  }
  out += ']';
}

struct LineError : std::runtime_error {
  LineError(std::size_t at, const std::string& what)
      : std::runtime_error("line " + std::to_string(at + 1) + ": " + what), index(at) {}
  std::size_t index;  // 0-based
};

std::vector<TokenId> parse_ids(simdjson::dom::element e, int n_words) {
  if (!e.is_array()) throw std::runtime_error("expected a JSON array of token ids");
  std::vector<TokenId> ids;
  for (simdjson::dom::element x : e.get_array()) {
    if (!x.is_int64()) throw std::runtime_error("expected integer token ids");
    const std::int64_t v = x.get_int64();
    if (v < 0 || v >= n_words) {
      throw std::runtime_error("token id " + std::to_string(v) + " is out of range 0.." + std::to_string(n_words - 1));
    }
    ids.push_back(static_cast<TokenId>(v));
  }
  return ids;
}

// One JSON object per line: {"text": ...} -> {"ids": [...]}, or with --decode {"ids": [...]} -> {"text": ...}.
// Lines are handled in batches, each batch on all threads, and written in input order.
int run_jsonl(const llama3::Tokenizer& tok, const Options& o, const llama3::SpecialSet& allowed,
              const llama3::SpecialSet& disallowed) {
  const std::string input = read_all(stdin);
  std::vector<std::string_view> lines;
  for (std::size_t at = 0; at < input.size();) {
    std::size_t end = input.find('\n', at);
    if (end == std::string::npos) end = input.size();
    lines.push_back(std::string_view(input).substr(at, end - at));
    at = end + 1;
  }
  constexpr std::size_t batch = 4096;
  std::vector<std::string> results;
  for (std::size_t first = 0; first < lines.size(); first += batch) {
    const std::size_t n = std::min(batch, lines.size() - first);
    results.assign(n, {});
    const auto work = [&](std::size_t k) {
      thread_local simdjson::dom::parser parser;
      std::string_view line = lines[first + k];
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.find_first_not_of(" \t") == std::string_view::npos) return;  // blank lines are skipped
      try {
        simdjson::dom::element doc;
        if (auto err = parser.parse(line.data(), line.size()).get(doc)) {
          throw std::runtime_error(std::string("not JSON: ") + simdjson::error_message(err));
        }
        simdjson::dom::element field;
        std::string& out = results[k];
        if (o.decode) {
          if (!doc.is_object() || doc.get_object().at_key("ids").get(field)) {
            throw std::runtime_error("expected {\"ids\": [...]}");
          }
          out = "{\"text\":";
          llama3::json::append_string(out, llama3::utf8::replace_invalid(tok.decode(parse_ids(field, tok.n_words()))));
          out += "}\n";
        } else {
          if (!doc.is_object() || doc.get_object().at_key("text").get(field) || !field.is_string()) {
            throw std::runtime_error("expected {\"text\": \"...\"}");
          }
          out = "{\"ids\":";
          append_ids(out, tok.encode_with(llama3::FastSplitter{}, field.get_string().value(), o.bos, o.eos, allowed,
                                          disallowed));
          out += "}\n";
        }
      } catch (const std::exception& e) {
        throw LineError(first + k, e.what());
      }
    };
    try {
      llama3::parallel_for(n, o.threads, work);
    } catch (const LineError& e) {  // the first bad line: write what came before it, then report it
      for (std::size_t k = 0; k < e.index - first; ++k) write(results[k]);
      throw;
    }
    for (const auto& r : results) write(r);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Llama 3 tokenizer: encodes text read on stdin to token ids, or decodes ids back to text.\n"
               "Plain mode reads all of stdin as one text and prints its ids as a JSON array.",
               "llama3-tokenize"};
  app.add_option("--tokenizer", o.tokenizer, "tokenizer.model (Meta), tokenizer.json (Hugging Face) or a .gguf file (llama.cpp)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_flag("--bos", o.bos, "start with <|begin_of_text|>");
  app.add_flag("--eos", o.eos, "end with <|end_of_text|>");
  app.add_option("--allowed-special", o.allowed,
                 "special tokens whose text becomes the token: all, none, or names separated by commas "
                 "(otherwise such text is encoded as plain text)")
      ->capture_default_str();
  app.add_option("--disallowed-special", o.disallowed,
                 "special tokens whose text is an error: all (every one not allowed), none, or names")
      ->capture_default_str();
  app.add_option("--special-names", o.names, "names of the special tokens of a tokenizer.model")
      ->check(CLI::IsMember({"llama3", "llama3.1"}))
      ->capture_default_str();
  app.add_flag("--jsonl", o.jsonl,
               "one JSON object a line: {\"text\": \"...\"} in, {\"ids\": [...]} out (with --decode, the reverse); "
               "blank lines are skipped");
  app.add_flag("--decode", o.decode,
               "read token ids (a JSON array) and write their bytes; with --jsonl, invalid UTF-8 becomes U+FFFD");
  llama3::cli::add_threads(app, o.threads, "threads for --jsonl");
  app.footer(
      "Examples:\n"
      "  echo -n 'Hello world' | llama3-tokenize --tokenizer tokenizer.model --bos\n"
      "  llama3-tokenize --tokenizer tokenizer.model --jsonl --threads 2 < texts.jsonl > ids.jsonl\n"
      "  echo '[9906,1917]' | llama3-tokenize --tokenizer tokenizer.model --decode");
  CLI11_PARSE(app, argc, argv);

  try {
    const llama3::Tokenizer tok(o.tokenizer, o.names == "llama3.1" ? llama3::SpecialTokenNames::llama3_1
                                                                   : llama3::SpecialTokenNames::llama3);
    const llama3::SpecialSet allowed = parse_special_set(o.allowed), disallowed = parse_special_set(o.disallowed);
    tok.encode("", false, false, allowed, disallowed);  // reject unknown special-token names before reading input
    if (o.jsonl) return run_jsonl(tok, o, allowed, disallowed);
    const std::string input = read_all(stdin);
    if (o.decode) {
      simdjson::dom::parser parser;
      simdjson::dom::element doc;
      if (auto err = parser.parse(input).get(doc)) {
        throw std::runtime_error(std::string("stdin is not a JSON array of token ids: ") + simdjson::error_message(err));
      }
      write(tok.decode(parse_ids(doc, tok.n_words())));
    } else {
      std::string out;
      append_ids(out, tok.encode(input, o.bos, o.eos, allowed, disallowed));
      out += '\n';
      write(out);
    }
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "llama3-tokenize: %s\n", e.what());
    return 1;
  }
  return 0;
}

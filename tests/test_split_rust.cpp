// The fast scanner against Rust's regex engine (fancy-regex over the regex crate, as in the official tiktoken
// core), built from tools/split_oracle: test_split_rust ORACLE WORK_DIR
//   1. character classes: ours (unicode_tables.hpp) against the crate's \p{L}, \p{N}, \s for every code point;
//      they may differ only where the crate's older Unicode tables leave the character unassigned;
//   2. the split of every vector, of random text, and of every code point in several contexts.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "llama3/tokenizer/split.hpp"
#include "support/test_data.hpp"

using namespace llama3;

namespace {

std::string hex(std::string_view s) {
  static constexpr char h[] = "0123456789abcdef";
  std::string o;
  for (const unsigned char c : s) {
    o += h[c >> 4];
    o += h[c & 15];
  }
  return o;
}

std::string our_pieces(std::string_view text) {
  std::string line;
  split_llama3(text, [&](std::string_view p) {
    if (!line.empty()) line += ',';
    line += hex(p);
  });
  return line;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: test_split_rust ORACLE WORK_DIR\n";
    return 2;
  }
  const std::string oracle = argv[1], work = argv[2];
  int failures = 0;

  // 1. Classes.
  if (std::system((oracle + " classes > " + work + "/classes.bin").c_str()) != 0) {
    std::cerr << "the oracle failed\n";
    return 1;
  }
  const std::string rust = test::read_file(work + "/classes.bin");
  if (rust.size() != 0x110000) {
    std::cerr << "classes.bin has " << rust.size() << " bytes\n";
    return 1;
  }
  std::vector<bool> differs(0x110000);
  std::size_t n_differs = 0;
  for (char32_t cp = 0; cp < 0x110000; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    const auto r = static_cast<unsigned char>(rust[cp]);
    const auto c = unicode::char_class(cp);
    const bool same = ((r & 1) != 0) == (c == unicode::CharClass::letter) &&
                      ((r & 2) != 0) == (c == unicode::CharClass::number) &&
                      ((r & 4) != 0) == (c == unicode::CharClass::space);
    if (same) continue;
    differs[cp] = true;
    ++n_differs;
    if (!(r & 8)) {  // assigned in the crate's tables, yet classed differently
      if (++failures <= 10) std::cerr << "class of U+" << std::hex << static_cast<unsigned>(cp) << std::dec << " differs\n";
    }
  }
  std::cout << n_differs << " code points are classed differently, all unassigned in the crate's Unicode tables\n";

  // 2. Splits.
  std::vector<std::string> texts;
  for (const auto& v : test::vectors()) {
    if (v.kind != test::Vector::decode) texts.push_back(v.text);
  }
  std::mt19937 rng(2024);
  for (int i = 0; i < 50'000; ++i) texts.push_back(test::random_text(rng, 40));
  for (char32_t cp = 0; cp < 0x110000; ++cp) {
    if ((cp >= 0xD800 && cp <= 0xDFFF) || differs[cp]) continue;
    std::string c;
    utf8::append(c, cp);
    texts.push_back("a" + c + " " + c + "1" + c + "!" + c + c + "'" + c + "\n" + c + "  " + c);
  }
  {
    std::ofstream in(work + "/texts.hex", std::ios::binary);
    for (const auto& t : texts) in << hex(t) << '\n';
  }
  if (std::system((oracle + " split < " + work + "/texts.hex > " + work + "/pieces.txt").c_str()) != 0) {
    std::cerr << "the oracle failed\n";
    return 1;
  }
  std::ifstream theirs(work + "/pieces.txt", std::ios::binary);
  std::string line;
  std::size_t i = 0;
  for (; i < texts.size() && std::getline(theirs, line); ++i) {
    if (line != our_pieces(texts[i]) && ++failures <= 10) {
      std::cerr << "split of " << detail::quote(texts[i], 80) << ":\n  ours " << our_pieces(texts[i]) << "\n  rust "
                << line << "\n";
    }
  }
  if (i != texts.size()) {
    std::cerr << "the oracle answered " << i << " of " << texts.size() << " texts\n";
    ++failures;
  }
  std::cout << texts.size() << " splits compared\n";
  if (failures) std::cerr << failures << " failures\n";
  return failures ? 1 : 0;
}

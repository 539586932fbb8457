#pragma once
// Reading JSON from files we did not write: simdjson's DOM, plus the one check it leaves to us. An object that names
// a key twice is an Error naming the key and where it is: simdjson finds the first value, Python's json (which
// Meta's and Hugging Face's loaders use) keeps the last, so such a file would mean one model to us and another to
// the reference.
#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <simdjson.h>

#include "llama3/core/error.hpp"

namespace llama3::json {

// Throws an Error naming the first repeated key in `root` (any depth) and the path to its object.
inline void check_unique_keys(simdjson::dom::element root, const std::string& source) {
  std::vector<std::pair<simdjson::dom::element, std::string>> todo{{root, ""}};  // containers still to look into
  std::vector<std::string_view> keys;
  while (!todo.empty()) {
    auto [e, path] = std::move(todo.back());
    todo.pop_back();
    if (e.is_object()) {
      keys.clear();
      for (auto [key, value] : simdjson::dom::object(e)) {
        keys.push_back(key);
        if (value.is_object() || value.is_array()) {
          todo.emplace_back(value, path.empty() ? std::string(key) : path + "." + std::string(key));
        }
      }
      std::sort(keys.begin(), keys.end());
      if (const auto twice = std::adjacent_find(keys.begin(), keys.end()); twice != keys.end()) {
        throw Error(source, std::nullopt, "key " + detail::quote(*twice, 80) + " appears twice in " +
                                              (path.empty() ? std::string("the top-level object") : "\"" + path + "\"") +
                                              ": a file whose keys repeat means different things to different readers");
      }
    } else if (e.is_array()) {
      std::size_t i = 0;
      for (auto item : simdjson::dom::array(e)) {
        if (item.is_object() || item.is_array()) todo.emplace_back(item, path + "[" + std::to_string(i) + "]");
        ++i;
      }
    }
  }
}

// Parses `text` (named `source` in errors): malformed JSON and repeated keys are Errors. The result lives in `parser`.
inline simdjson::dom::element parse(simdjson::dom::parser& parser, std::string_view text, const std::string& source) {
  simdjson::dom::element root;
  if (const auto err = parser.parse(text.data(), text.size()).get(root)) {
    throw Error(source, std::nullopt, std::string("malformed JSON: ") + simdjson::error_message(err));
  }
  check_unique_keys(root, source);
  return root;
}

}  // namespace llama3::json

#pragma once
// What the command-line tools share: options checked strictly, with errors that say what is expected. CLI11 2.1 on
// its own reads "-1" into an unsigned option as 2^64 - 1, lets NaN through its range checks, and prints an open
// range's end as 1.8e308.
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <system_error>

#include <CLI/CLI.hpp>

#include "llama3/core/parallel.hpp"
#include "llama3/generation/sampler.hpp"

namespace llama3::cli {

// An integer of type T from lo to hi (checked on the text, so "-1" is not an unsigned's 2^64 - 1).
template <class T>
CLI::Validator integer(T lo, T hi) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        T v{};
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec == std::errc() && end == s.data() + s.size() && v >= lo && v <= hi) return "";
        return s + ": expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
      },
      "INT in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

// A number from lo to hi (lo excluded when lo_open); NaN and infinities never are.
inline CLI::Validator number(double lo, double hi, bool lo_open = false) {
  const auto text = [](double x) {
    std::string s = std::to_string(x);
    s.erase(s.find_last_not_of('0') + 1);
    if (s.back() == '.') s.pop_back();
    return s;
  };
  const std::string range = (lo_open ? "(" : "[") + text(lo) + ", " + text(hi) + "]";
  return CLI::Validator(
      [=](std::string& s) -> std::string {
        double v = 0;
        try {
          std::size_t used = 0;
          v = std::stod(s, &used);
          if (used != s.size()) v = std::nan("");
        } catch (const std::exception&) {
          v = std::nan("");
        }
        if (std::isfinite(v) && (lo_open ? v > lo : v >= lo) && v <= hi) return "";
        return s + ": expected a number in " + range;
      },
      "NUMBER in " + range);
}

inline CLI::Option* add_threads(CLI::App& app, unsigned& threads, const std::string& help = "threads") {
  return app.add_option("--threads", threads, help + " (0: all hardware threads)")
      ->capture_default_str()
      ->check(integer<unsigned>(0, max_threads));
}

inline CLI::Option* add_seed(CLI::App& app, std::uint64_t& seed, const std::string& help) {
  return app.add_option("--seed", seed, help)->check(integer<std::uint64_t>(0, UINT64_MAX));
}

// --temperature and --top-p (Meta's two); with `all`, also --top-k, --min-p and --repeat-penalty. The ranges are
// SamplingParams::validate's, which the library applies anyway.
inline void add_sampling(CLI::App& app, SamplingParams& s, bool all) {
  app.add_option("--temperature", s.temperature, "0 for greedy")->capture_default_str()->check(number(0, 1e6));
  app.add_option("--top-p", s.top_p, "nucleus sampling (1: off)")->capture_default_str()->check(number(0, 1, true));
  if (!all) return;
  app.add_option("--top-k", s.top_k, "keep the k best tokens (0: off)")
      ->capture_default_str()->check(integer<int>(0, std::numeric_limits<int>::max()));
  app.add_option("--min-p", s.min_p, "keep tokens at least this fraction of the best's probability (0: off)")
      ->capture_default_str()->check(number(0, 1));
  app.add_option("--repeat-penalty", s.repetition_penalty, "repetition penalty (1: off)")
      ->capture_default_str()->check(number(0, 1e6, true));
}

}  // namespace llama3::cli

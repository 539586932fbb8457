#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>

#include "llama3/core/dtype.hpp"

using namespace llama3;

TEST_CASE("bf16 widens exactly and rounds to nearest even", "[dtype]") {
  for (std::uint32_t b = 0; b < 0x10000; ++b) {
    const float f = static_cast<float>(bf16::from_bits(static_cast<std::uint16_t>(b)));
    if (std::isnan(f)) {
      CHECK(std::isnan(static_cast<float>(bf16(f))));
      continue;
    }
    REQUIRE(bf16(f).bits == b);  // every bf16 survives the round trip
  }
  CHECK(bf16(1.0f).bits == 0x3F80);
  CHECK(bf16(std::bit_cast<float>(0x3F808000u)).bits == 0x3F80);  // a tie rounds to even (down)
  CHECK(bf16(std::bit_cast<float>(0x3F818000u)).bits == 0x3F82);  // a tie rounds to even (up)
  CHECK(bf16(std::bit_cast<float>(0x3F808001u)).bits == 0x3F81);  // above the tie rounds up
}

TEST_CASE("f16 converts like IEEE half precision", "[dtype]") {
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    const float f = static_cast<float>(f16::from_bits(static_cast<std::uint16_t>(h)));
    if (std::isnan(f)) continue;
    REQUIRE(f16(f).bits == h);
  }
  CHECK(static_cast<float>(f16::from_bits(0x3C00)) == 1.0f);
  CHECK(static_cast<float>(f16::from_bits(0x0001)) == std::ldexp(1.0f, -24));  // the smallest subnormal
  CHECK(static_cast<float>(f16::from_bits(0x7BFF)) == 65504.0f);
  CHECK(f16(65520.0f).bits == 0x7C00);  // rounds to infinity
  CHECK(f16(1e-8f).bits == 0x0000);
  // Random floats round to the nearest half (ties to even): compare with the neighbours.
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> mag(-20.0f, 16.0f);
  for (int i = 0; i < 100000; ++i) {
    const float x = std::ldexp(1.0f + static_cast<float>(rng() % 1000) / 1000.0f, static_cast<int>(mag(rng)));
    const f16 h(x);
    const float got = static_cast<float>(h);
    const float up = static_cast<float>(f16::from_bits(static_cast<std::uint16_t>(h.bits + 1)));
    const float down = h.bits ? static_cast<float>(f16::from_bits(static_cast<std::uint16_t>(h.bits - 1))) : 0.0f;
    INFO(x);
    REQUIRE(std::fabs(got - x) <= std::fabs(up - x));
    REQUIRE(std::fabs(got - x) <= std::fabs(down - x));
  }
}

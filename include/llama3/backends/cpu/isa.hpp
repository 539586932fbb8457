#pragma once
// Which SIMD kernels the CPU backend runs. The library needs no -m flags: each kernel is compiled for its target with
// a function attribute and chosen at run time from what the CPU reports. The choice can be capped, never raised:
// set_max_isa() (the tests run every kernel on every target the machine has; llama3-bench --isa compares them) or
// the environment variable LLAMA3_ISA=portable|avx2|avx512|avx512_bf16, read once.
//
//   avx2         AVX2, FMA, F16C (Haswell, Zen 1 and later)
//   avx512       + AVX-512 F/BW/DQ/VL, VNNI and VBMI (Ice Lake, Zen 4 and later): 512-bit kernels, vpdpbusd, vpermb
//   avx512_bf16  + AVX512_BF16 (Cooper Lake, Sapphire Rapids, Zen 4 and later): vdpbf16ps
#include <atomic>
#include <cstdlib>
#include <string_view>
#include <vector>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define LLAMA3_X86 1
#define LLAMA3_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define LLAMA3_TARGET_AVX512 \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi")))
#define LLAMA3_TARGET_AVX512_BF16 \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512vbmi,avx512bf16")))
#else
#define LLAMA3_X86 0
#define LLAMA3_TARGET_AVX2
#define LLAMA3_TARGET_AVX512
#define LLAMA3_TARGET_AVX512_BF16
#endif

namespace llama3::cpu {

enum class Isa { portable, avx2, avx512, avx512_bf16 };

inline constexpr std::string_view isa_name(Isa i) noexcept {
  switch (i) {
    case Isa::portable: return "portable";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::avx512_bf16: return "avx512_bf16";
  }
  return "?";
}

// The name's Isa; false when it names none.
inline bool parse_isa(std::string_view name, Isa& out) noexcept {
  for (const Isa i : {Isa::portable, Isa::avx2, Isa::avx512, Isa::avx512_bf16}) {
    if (name == isa_name(i)) {
      out = i;
      return true;
    }
  }
  return false;
}

// What this CPU (and its operating system) supports.
inline Isa detected_isa() noexcept {
#if LLAMA3_X86
  static const Isa isa = [] {
    // F16C from CPUID (leaf 1, ECX bit 29): clang 14's __builtin_cpu_supports does not know the name. The AVX2
    // check already covers the operating system's saving of the AVX state it needs.
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx >> 29 & 1u);
    if (!(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c)) return Isa::portable;
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
          __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
          __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi"))) {
      return Isa::avx2;
    }
    return __builtin_cpu_supports("avx512bf16") ? Isa::avx512_bf16 : Isa::avx512;
  }();
  return isa;
#else
  return Isa::portable;
#endif
}

namespace isa_detail {
inline std::atomic<Isa>& cap() noexcept {
  static std::atomic<Isa> c = [] {
    Isa i = Isa::avx512_bf16;
    if (const char* env = std::getenv("LLAMA3_ISA")) {
      if (!parse_isa(env, i)) i = Isa::avx512_bf16;  // an unknown name caps nothing
    }
    return i;
  }();
  return c;
}
}  // namespace isa_detail

// The kernels in use: what the CPU has, capped.
inline Isa isa() noexcept {
  const Isa cap = isa_detail::cap().load(std::memory_order_relaxed);
  const Isa have = detected_isa();
  return cap < have ? cap : have;
}

// Caps the kernels at `max` (Isa::avx512_bf16: no cap). Not meant to change while a model computes.
inline void set_max_isa(Isa max) noexcept { isa_detail::cap().store(max, std::memory_order_relaxed); }

// Sets a cap for a scope, then restores the previous one (tests).
class ScopedIsa {
public:
  explicit ScopedIsa(Isa max) noexcept : old_(isa_detail::cap().load()) { set_max_isa(max); }
  ~ScopedIsa() { set_max_isa(old_); }
  ScopedIsa(const ScopedIsa&) = delete;
  ScopedIsa& operator=(const ScopedIsa&) = delete;

private:
  Isa old_;
};

inline bool has_avx2() noexcept { return isa() >= Isa::avx2; }
inline bool has_avx512() noexcept { return isa() >= Isa::avx512; }
inline bool has_avx512_bf16() noexcept { return isa() >= Isa::avx512_bf16; }

// Every Isa this machine can run, from portable up (the tests loop over them).
inline std::vector<Isa> available_isas() {
  std::vector<Isa> out;
  for (const Isa i : {Isa::portable, Isa::avx2, Isa::avx512, Isa::avx512_bf16}) {
    if (i <= detected_isa()) out.push_back(i);
  }
  return out;
}

}  // namespace llama3::cpu

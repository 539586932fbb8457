// The CPU kernels, compiled once for this project's tools, tests and benchmarks, which are built with
// LLAMA3_CPU_KERNELS_EXTERN (see include/llama3/backends/cpu/kernels.hpp).
#define LLAMA3_CPU_KERNELS_IMPLEMENTATION
#include "llama3/backends/cpu/kernels.hpp"

#pragma once

#define LLAMA3_VERSION_MAJOR 0
#define LLAMA3_VERSION_MINOR 1
#define LLAMA3_VERSION_PATCH 0

namespace llama3 {
inline constexpr const char* version = "0.1.0";
}

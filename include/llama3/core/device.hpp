#pragma once
// Device tags. A tensor's device is part of its type, and primitives<Device> (backends/) implement the ops for it.
namespace llama3 {

struct Cpu {
  static constexpr const char* name = "cpu";
};

struct Cuda {
  static constexpr const char* name = "cuda";
};

}  // namespace llama3

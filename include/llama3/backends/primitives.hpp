#pragma once
// primitives<Device>: the operations the Transformer composes, one specialisation per device in its own file
// (backends/cpu/primitives.hpp; a CUDA one comes with the CUDA policy). The model code calls only these.
namespace llama3 {

template <class Device>
struct primitives;

}  // namespace llama3

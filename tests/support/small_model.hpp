#pragma once
// A small random model with the real Llama 3 vocabulary (128,256 tokens): 2 layers of width 64, tied embeddings.
// Fast enough for generation and chat tests, and it speaks in real tokens.
#include "llama3/model/model_args.hpp"

namespace llama3::test {

inline ModelParams small_llama3_params(int max_seq_len = 2048, int max_batch_size = 1) {
  ModelParams p;
  p.dim = 64;
  p.n_layers = 2;
  p.n_heads = 4;
  p.n_kv_heads = 2;
  p.hidden_dim = 128;
  p.vocab_size = 128256;
  p.tie_embeddings = true;
  p.max_seq_len = max_seq_len;
  p.max_batch_size = max_batch_size;
  return p;
}

}  // namespace llama3::test

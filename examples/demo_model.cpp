// llama3-demo-model: writes a small Llama 3-shaped model with random weights and Meta's Llama 3 tokenizer, as a
// Hugging Face folder (config.json, model.safetensors, tokenizer.model), for trying llama3-chat without
// downloading weights. Its replies are nonsense: the weights are random.
#include <cstdio>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>

#include "cli.hpp"
#include "llama3/io/hf_writer.hpp"
#include "llama3/model/synthetic.hpp"
#include "llama3/tokenizer.hpp"

int main(int argc, char** argv) {
  std::string out_dir, tokenizer = LLAMA3_DEFAULT_TOKENIZER, dtype = "bf16";
  int dim = 256, layers = 4, heads = 8, kv_heads = 2, ffn = 768;
  std::uint64_t seed = 1;
  CLI::App app{"Writes a small random Llama 3-shaped model (Hugging Face folder) with Meta's tokenizer, for demos and "
               "tests: the weights are random, so its replies are nonsense.", "llama3-demo-model"};
  app.add_option("dir", out_dir, "the folder to write")->required();
  app.add_option("--tokenizer", tokenizer, "Meta's Llama 3 tokenizer.model to copy in")->capture_default_str();
  app.add_option("--dim", dim, "model width")->capture_default_str()->check(llama3::cli::integer(2, 1 << 16));
  app.add_option("--layers", layers, "transformer layers")->capture_default_str()->check(llama3::cli::integer(1, 1024));
  app.add_option("--heads", heads, "attention heads")->capture_default_str()->check(llama3::cli::integer(1, 1024));
  app.add_option("--kv-heads", kv_heads, "key/value heads")->capture_default_str()->check(llama3::cli::integer(1, 1024));
  app.add_option("--ffn", ffn, "FeedForward width")->capture_default_str()->check(llama3::cli::integer(1, 1 << 18));
  llama3::cli::add_seed(app, seed, "weights seed")->capture_default_str();
  app.add_option("--dtype", dtype, "weight type")->check(CLI::IsMember({"bf16", "f32"}))->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    const llama3::Tokenizer tok(tokenizer);  // checks the file, and sizes the vocabulary
    llama3::ModelParams p;
    p.dim = dim;
    p.n_layers = layers;
    p.n_heads = heads;
    p.n_kv_heads = kv_heads;
    p.hidden_dim = ffn;
    p.vocab_size = tok.n_words();
    p.tie_embeddings = true;
    p.use_scaled_rope = true;
    p.rope_scaling.factor = 32;
    p.validate("llama3-demo-model");
    llama3::Checkpoint c = dtype == "bf16" ? llama3::synthetic_checkpoint<llama3::bf16>(p, seed)
                                           : llama3::synthetic_checkpoint<float>(p, seed);
    llama3::io::write_hf_checkpoint(out_dir, c);
    std::filesystem::copy_file(tokenizer, std::filesystem::path(out_dir) / "tokenizer.model",
                               std::filesystem::copy_options::overwrite_existing);
    std::printf("wrote %s: dim %d, %d layers, %d/%d heads, FeedForward %d, vocab %d, %s, random weights\n",
                out_dir.c_str(), dim, layers, heads, kv_heads, ffn, p.vocab_size, dtype.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llama3-demo-model: %s\n", e.what());
    return 1;
  }
  return 0;
}

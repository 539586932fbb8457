// llama3-complete: Meta's example_text_completion.py: the same four prompts (the last one few-shot), the same
// defaults, through Llama::text_completion.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli.hpp"
#include "llama3/generation/llama.hpp"

int main(int argc, char** argv) {
  std::string ckpt_dir, tokenizer_path, quantize;
  llama3::SamplingParams sampling;  // Meta's defaults: temperature 0.6, top_p 0.9
  int max_seq_len = 128, max_gen_len = 64, max_batch_size = 4;
  std::uint64_t seed = 1;
  unsigned threads = 0;
  CLI::App app{"Text completion of Meta's example prompts (example_text_completion.py)", "llama3-complete"};
  app.add_option("--model,--ckpt-dir", ckpt_dir, "checkpoint folder (Meta or Hugging Face)")->required();
  app.add_option("--tokenizer", tokenizer_path, "tokenizer.model, tokenizer.json or .gguf (default: the GGUF's own, or found in the folder)");
  llama3::cli::add_sampling(app, sampling, /*all=*/false);
  app.add_option("--max-seq-len", max_seq_len, "context length")->capture_default_str()
      ->check(llama3::cli::integer(2, 1 << 24));
  app.add_option("--max-gen-len", max_gen_len, "longest completion, in tokens")->capture_default_str()
      ->check(llama3::cli::integer(1, 1 << 24));
  app.add_option("--max-batch-size", max_batch_size, "prompts decoded together (the four prompts take four)")
      ->capture_default_str()->check(llama3::cli::integer(1, 1 << 16));
  llama3::cli::add_seed(app, seed, "random seed")->capture_default_str();
  llama3::cli::add_threads(app, threads);
  app.add_option("--quantize", quantize, "quantize the weights when loading: q8_0 or q4_0 (GGUF's blocks)")
      ->check(CLI::IsMember({"q8_0", "q4_0"}));
  bool no_mmap = false;
  app.add_flag("--no-mmap", no_mmap, "read the weights into memory instead of mapping the files (faster decoding where "
               "mapped pages are slow, as on some virtual machines)");
  std::string kv_cache = "f32";
  app.add_option("--kv-cache", kv_cache, "the KV cache's type: f32, or bf16 (half the memory; logits within ~1e-2)")
      ->capture_default_str()->check(CLI::IsMember({"f32", "bf16"}));
  CLI11_PARSE(app, argc, argv);
  try {
    if (tokenizer_path.empty() && std::filesystem::is_directory(ckpt_dir)) {
      tokenizer_path = llama3::find_tokenizer(ckpt_dir, "give its path with --tokenizer FILE");
    }
    llama3::LoadOptions options;
    options.max_seq_len = max_seq_len;
    options.max_batch_size = max_batch_size;
    if (!quantize.empty()) options.quantize = llama3::parse_quantization(quantize);
    if (kv_cache == "bf16") options.kv_cache = llama3::DType::bf16;
    options.mmap = !no_mmap;
    auto generator = llama3::Llama<>::build(ckpt_dir, tokenizer_path, options, seed, threads);
    const std::vector<std::string> prompts = {
        // For these prompts, the expected answer is the natural continuation of the prompt
        "I believe the meaning of life is",
        "Simply put, the theory of relativity states that ",
        "A brief message congratulating the team on the launch:\n\n        Hi everyone,\n\n        I just ",
        // Few shot prompt (providing a few examples before asking model to complete more);
        "Translate English to French:\n\n        sea otter => loutre de mer\n        peppermint => menthe poivrée\n"
        "        plush girafe => girafe peluche\n        cheese =>",
    };
    const auto results = generator.text_completion(prompts, sampling.temperature, sampling.top_p, max_gen_len);
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      std::printf("%s\n> %s\n\n==================================\n\n", prompts[i].c_str(), results[i].generation.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llama3-complete: %s\n", e.what());
    return 1;
  }
  return 0;
}

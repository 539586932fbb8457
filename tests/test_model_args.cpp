#include <catch2/catch.hpp>

#include "llama3/model/model_args.hpp"

using namespace llama3;

namespace {
template <class Args>
ModelParams meta_rule_params() {  // the preset as run-time params, with Meta's rule for the FeedForward size
  ModelParams p = params_of<Args>();
  p.hidden_dim = 0;
  return p;
}
struct Odd : DynamicArgs {
  static constexpr int dim = 60, n_heads = 4;  // head_dim 15
};
struct BadGqa : DynamicArgs {
  static constexpr int n_heads = 32, n_kv_heads = 5;
};
struct NotDivisible : DynamicArgs {
  static constexpr int dim = 100, n_heads = 8;
};
struct Fixed64 : DynamicArgs {
  static constexpr int dim = 64, n_heads = 4;
};
}  // namespace

TEST_CASE("Meta's FeedForward size rule gives the published sizes", "[args]") {
  // (dim, multiple_of, ffn_dim_multiplier) of each release's params.json.
  CHECK(ModelParams::meta_hidden_dim(4096, 1024, 1.3) == presets::Llama3_8B::hidden_dim);
  CHECK(ModelParams::meta_hidden_dim(8192, 4096, 1.3) == presets::Llama3_70B::hidden_dim);
  CHECK(ModelParams::meta_hidden_dim(16384, 4096, 1.2) == presets::Llama3_1_405B::hidden_dim);
  CHECK(ModelParams::meta_hidden_dim(2048, 256, 1.5) == presets::Llama3_2_1B::hidden_dim);
  CHECK(ModelParams::meta_hidden_dim(3072, 256, 1.0) == presets::Llama3_2_3B::hidden_dim);
  CHECK(ModelParams::meta_hidden_dim(64, 32, 1.3) == 224);  // the tiny-gqa fixture
  CHECK(ModelParams::meta_hidden_dim(4096, 256, std::nullopt) == 11008);  // Llama 2 7B, without a multiplier
}

TEST_CASE("presets and derived constants", "[args]") {
  static_assert(args_are_valid<presets::Llama3_8B> && args_are_valid<presets::Llama3_1_405B>);
  static_assert(args_are_valid<presets::Llama3_2_1B> && args_are_valid<DynamicArgs>);
  const ModelParams p = meta_rule_params<presets::Llama3_2_1B>();
  CHECK(p.head_dim() == 64);
  CHECK(p.n_rep() == 4);
  CHECK(meta_rule_params<presets::Llama3_1_405B>().head_dim() == 128);
  CHECK(meta_rule_params<presets::Llama3_70B>().n_rep() == 8);
}

TEST_CASE("invalid fixed args fail at compile time", "[args]") {
  static_assert(!args_are_valid<Odd>);
  static_assert(!args_are_valid<BadGqa>);
  static_assert(!args_are_valid<NotDivisible>);
  CHECK(std::string(check_args<BadGqa>()) == "n_heads must be a multiple of n_kv_heads");
  CHECK(std::string(check_args<Odd>()).find("even") != std::string::npos);
}

TEST_CASE("invalid dynamic params are an Error naming the field", "[args][errors]") {
  ModelParams p;
  p.n_kv_heads = 5;
  CHECK_THROWS_WITH(p.validate("params.json"), Catch::Contains("params.json") && Catch::Contains("n_kv_heads = 5"));
  p = ModelParams{};
  p.dim = 4095;
  CHECK_THROWS_WITH(p.validate(), Catch::Contains("dim = 4095"));
  p = ModelParams{};
  p.norm_eps = 0;
  CHECK_THROWS_WITH(p.validate(), Catch::Contains("norm_eps"));
  p = ModelParams{};
  p.vocab_size = -1;
  CHECK_THROWS_WITH(p.validate(), Catch::Contains("vocab_size = -1"));
  p = ModelParams{};
  p.use_scaled_rope = true;
  p.rope_scaling.high_freq_factor = 0.5;
  CHECK_THROWS_WITH(p.validate(), Catch::Contains("frequency factors"));
}

TEST_CASE("fixed args that disagree with a checkpoint are an Error naming the field", "[args][errors]") {
  ModelParams p;
  p.dim = 64;
  p.n_heads = 4;
  p.n_kv_heads = 2;
  p.n_layers = 2;
  p.vocab_size = 512;
  p.hidden_dim = 224;
  CHECK(resolve<Fixed64>(p, "ckpt").dim == 64);
  CHECK_THROWS_WITH(resolve<presets::Llama3_8B>(p, "ckpt"), Catch::Contains("ckpt") && Catch::Contains("dim is 64") &&
                                                                 Catch::Contains("4096"));
  p.dim = 4096;
  p.n_heads = 32;
  p.n_kv_heads = 8;
  p.n_layers = 32;
  p.vocab_size = 128256;
  p.hidden_dim = 14336;
  CHECK(resolve<presets::Llama3_8B>(p, "ckpt").dim == 4096);
  p.use_scaled_rope = true;
  CHECK_THROWS_WITH(resolve<presets::Llama3_8B>(p, "ckpt"), Catch::Contains("use_scaled_rope"));
  CHECK(resolve<presets::Llama3_1_8B>(p, "ckpt").use_scaled_rope);
  p.rope_scaling.factor = 32;
  CHECK_THROWS_WITH(resolve<presets::Llama3_1_8B>(p, "ckpt"), Catch::Contains("rope scaling factor"));
}

#pragma once
// llama3.hpp: run Meta Llama 3 models from C++. This umbrella header gives everything the library offers.
#include "llama3/version.hpp"
#include "llama3/core/error.hpp"
#include "llama3/tokenizer.hpp"
#include "llama3/chat_format.hpp"
#include "llama3/model/transformer.hpp"
#include "llama3/generation/sampler.hpp"
#include "llama3/generation/llama.hpp"
#include "llama3/generation/session.hpp"

#!/usr/bin/env bash
# Chats with a small model made here: Meta's real Llama 3 tokenizer, random weights (no weights can be shipped),
# so the replies are nonsense but everything else (the chat format, streaming, the session, Ctrl-C, /stats) is real.
#   bash scripts/chat-demo.sh                      interactive
#   bash scripts/chat-demo.sh --prompt "Hi"        one reply; any llama3-chat option can follow
# With a downloaded model, run the same program on its folder: build/release/examples/llama3-chat --model DIR
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/release/examples
if [[ ! -x $bin/llama3-chat || ! -x $bin/llama3-demo-model ]]; then
  cmake --preset release >/dev/null
  cmake --build --preset release --target llama3-chat llama3-demo-model
fi
if [[ ! -f build/demo-model/model.safetensors ]]; then
  "$bin/llama3-demo-model" build/demo-model
fi
exec "$bin/llama3-chat" --model build/demo-model "$@"

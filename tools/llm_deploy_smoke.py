"""GPU check of the LLM deployed path without any weights: a randomly initialised Llama of
SmolLM2-135M's shape (30 layers, hidden 576) in BF16, timed by ``quide.measure.llm.deployed_token_latency`` at 16,
8 and 4 bits. Prints ms per generated token; used before the real run to catch torchao or CUDA-graph
problems early."""
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from quide.measure import llm

cfg = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                  num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048,
                  tie_word_embeddings=True)
torch.manual_seed(0)
model = LlamaForCausalLM(cfg).to("cuda", torch.bfloat16).eval()
for bits in (16, 8, 4, 3):
    start = time.perf_counter()
    out = llm.deployed_token_latency(model, bits)
    print(bits, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()},
          f"{time.perf_counter() - start:.0f} s", flush=True)

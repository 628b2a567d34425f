"""A tiny Qwen2-style model, made at test time: nothing is downloaded.

Two decoder layers (hidden 128, 2 heads of 64, 1 KV head) with seeded random weights, saved as
safetensors, and a byte-level BPE tokenizer trained here on a short built-in corpus, with a
ChatML chat template whose generation prompt ends in `<think>` (as DeepSeek-R1's does).

The random model is steered so that what it says is known in advance: the embeddings and the
output head are set so that the next token depends only on the current one (the random layers
add too little to change the choice). After `<think>` it says

    Let me think</think>Hello world<|im_end|>

and after any token outside that chain it starts the chain at "Let". So a chat reply is reasoning
"Let me think" and content "Hello world" (what the deepseek_r1 reasoning parser must split), a
completion stops at <|im_end|> after 6 tokens, and with ignore_eos it repeats the chain for as
many tokens as asked (long streams). Everything else about the model is random.

Run `python tiny_model.py DIR` to write it into DIR.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HIDDEN = 128
LAYERS = 2
HEADS = 2
KV_HEADS = 1
INTERMEDIATE = 256
VOCAB = 384
MAX_POSITIONS = 4096
SEED = 0

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
THINK, END_THINK = "<think>", "</think>"  # added tokens, not special: they stay in the output text
EOS = "<|im_end|>"
# token -> next token; byte-level BPE marks a leading space with "Ġ"
CHAIN = [THINK, "Let", "Ġme", "Ġthink", END_THINK, "Hello", "Ġworld", EOS]
START = "Let"  # what follows any token outside the chain (and <|im_end|>, for ignore_eos)
REASONING = "Let me think"
CONTENT = "Hello world"

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{{ part['text'] }}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n<think>{% endif %}"
)

CORPUS = [
    "Let me think about it. Hello world, hello there.",
    "Let me think again: the world is wide and the model is tiny.",
    "Hello world! Who are you? I am a tiny test model.",
    "The quick brown fox jumps over the lazy dog while we think.",
    "Streaming tokens arrive one by one through the gateway.",
    "A key, a lock, a door: only those with the key may enter.",
    "Numbers 0 1 2 3 4 5 6 7 8 9 and words for a benchmark prompt.",
]


def train_tokenizer(directory: Path) -> object:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB - 2,
        special_tokens=SPECIAL,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(CORPUS * 20, trainer=trainer)
    tokenizer.add_tokens(
        [AddedToken(THINK, special=False, normalized=False), AddedToken(END_THINK, special=False, normalized=False)]
    )
    tokenizer.save(str(directory / "tokenizer.json"))
    missing = [t for t in CHAIN if tokenizer.token_to_id(t) is None]
    if missing:
        raise RuntimeError(f"the trained vocabulary lacks {missing}; adjust CORPUS")
    return tokenizer


def build(directory: Path) -> Path:
    """Write the model and tokenizer into `directory` (created) and return it."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(directory)
    ids = {t: tokenizer.token_to_id(t) for t in [*SPECIAL, *CHAIN]}
    vocab = tokenizer.get_vocab_size()
    (directory / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "model_max_length": MAX_POSITIONS,
                "eos_token": EOS,
                "pad_token": "<|endoftext|>",
                "bos_token": None,
                "add_bos_token": False,
                "chat_template": CHAT_TEMPLATE,
                "clean_up_tokenization_spaces": False,
            },
            indent=1,
        )
    )
    (directory / "special_tokens_map.json").write_text(
        json.dumps({"eos_token": EOS, "pad_token": "<|endoftext|>"}, indent=1)
    )

    config = Qwen2Config(
        vocab_size=vocab,
        hidden_size=HIDDEN,
        intermediate_size=INTERMEDIATE,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=ids[EOS],
        pad_token_id=ids["<|endoftext|>"],
    )
    config.architectures = ["Qwen2ForCausalLM"]
    torch.manual_seed(SEED)
    model = Qwen2ForCausalLM(config).to(torch.float32)
    with torch.no_grad():
        # Chain tokens get orthonormal embeddings (dims 1..); every other token points along dim 0
        # (plus a little noise). The head maps each chain token to its successor, dim 0 to START.
        embed = torch.zeros(vocab, HIDDEN)
        embed[:, 0] = 1.0
        embed += 0.01 * torch.randn(vocab, HIDDEN)
        head = torch.zeros(vocab, HIDDEN)
        head[ids[START], 0] = 1.0
        for position, token in enumerate(CHAIN):
            dim = 1 + position
            embed[ids[token]] = 0.0
            embed[ids[token], dim] = 1.0
            successor = CHAIN[position + 1] if position + 1 < len(CHAIN) else START
            head[ids[successor], dim] = 1.0
        model.model.embed_tokens.weight.copy_(embed)
        model.lm_head.weight.copy_(20.0 * head)
    model.generation_config.eos_token_id = ids[EOS]
    model.generation_config.bos_token_id = None
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(directory, safe_serialization=True)
    return directory


if __name__ == "__main__":
    print(build(Path(sys.argv[1])))

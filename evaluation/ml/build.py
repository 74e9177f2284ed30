"""Build small models from scratch: a BPE tokenizer trained with `tokenizers` and randomly initialised
transformers models. Tests and bench scripts use these instead of downloading weights; the offline demo
model starts from them too."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch

SPECIAL_TOKENS = ["<pad>", "</s>", "<s>", "<unk>"]  # pad is id 0: T5 starts decoding from it

# Sizes named for the models they mimic; "tiny" is for tests.
SIZES = {
    "t5": {
        "tiny": dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4),
        # The offline demo model: small enough to instruction-tune from scratch on 2 CPU cores in minutes.
        "demo": dict(d_model=128, d_kv=32, d_ff=384, num_layers=3, num_heads=4, dropout_rate=0.0),
        "t5-small": dict(d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8),
    },
    "gpt2": {
        "tiny": dict(n_embd=32, n_layer=2, n_head=4, n_positions=512),
        "gpt2-small": dict(n_embd=768, n_layer=12, n_head=12, n_positions=1024),
    },
    "llama": {
        "tiny": dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=512,
        ),
    },
}
FAMILY = {"t5": "seq2seq", "gpt2": "causal", "llama": "causal"}


def train_tokenizer(
    texts: Iterable[str],
    out_dir: str | Path,
    *,
    vocab_size: int = 1000,
    add_bos: bool = False,
    add_eos: bool = False,
    chat_template: str | None = None,
    split_digits: bool = False,
):
    """A byte-level BPE tokenizer (GPT-2 style). add_eos appends </s> as T5's tokenizer does; add_bos
    prepends <s> as Llama's does; split_digits makes every digit its own token (as Llama's tokenizer does),
    so that a small model can learn arithmetic facts such as parity from the last digit."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.pre_tokenizer = (
        pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
        if split_digits
        else byte_level
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    single = ("<s> " if add_bos else "") + "$A" + (" </s>" if add_eos else "")
    if add_bos or add_eos:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=single,
            special_tokens=[(t, tokenizer.token_to_id(t)) for t in ("<s>", "</s>") if t in single],
        )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", bos_token="<s>", unk_token="<unk>"
    )
    if chat_template:
        wrapped.chat_template = chat_template
    wrapped.save_pretrained(str(out_dir))
    return wrapped


def build_model(arch: str, tokenizer, out_dir: str | Path, *, size: str = "tiny", seed: int = 0):
    """A randomly initialised model of the given architecture, saved with its tokenizer."""
    import transformers

    torch.manual_seed(seed)
    dims = SIZES[arch][size]
    vocab = len(tokenizer)
    ids = dict(pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    if arch == "t5":
        config = transformers.T5Config(
            vocab_size=vocab, decoder_start_token_id=tokenizer.pad_token_id, **ids, **dims
        )
        model = transformers.T5ForConditionalGeneration(config)
    elif arch == "gpt2":
        config = transformers.GPT2Config(vocab_size=vocab, bos_token_id=tokenizer.bos_token_id, **ids, **dims)
        model = transformers.GPT2LMHeadModel(config)
    elif arch == "llama":
        config = transformers.LlamaConfig(
            vocab_size=vocab, bos_token_id=tokenizer.bos_token_id, **ids, **dims
        )
        model = transformers.LlamaForCausalLM(config)
    else:
        raise ValueError(f"Unknown architecture {arch!r}; choose one of {', '.join(SIZES)}.")
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    return model

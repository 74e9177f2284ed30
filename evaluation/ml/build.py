"""Build small models from scratch: a BPE tokenizer trained with `tokenizers` and randomly initialised
transformers models. Tests and bench scripts use these instead of downloading weights; the offline demo
model starts from them too."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Regex

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


# Tokenizer styles: how the real checkpoints' tokenizer.json files split text, so that tests meet what a
# downloaded model brings. Tokenizing a prompt in pieces gives the whole prompt's ids with "byte-level" only;
# the other three add or merge tokens at a piece's edge (encoding.py therefore tokenizes whole prompts).
# - byte-level: GPT-2's byte-level BPE (GPT-2, GPT-J, OPT, Pythia, the tiny models'); the default.
# - sentencepiece: SentencePiece BPE with byte fallback, as Llama-2, Alpaca, Vicuna and Mistral-7B ship it in
#   tokenizer.json (transformers' "legacy" conversion; what a tokenizer.json class such as
#   PreTrainedTokenizerFast loads as it is): a normaliser puts "\u2581" before the text and for every space,
#   so each separately tokenized piece starts a new word.
# - metaspace: the same model as transformers 5's LlamaTokenizer rebuilds it from those files (no normaliser;
#   a Metaspace pre-tokenizer that adds "\u2581" to a text's first word unless it starts with a space).
# - llama3: byte-level BPE behind Llama-3's (tiktoken's cl100k) split pattern, under which punctuation takes
#   the line breaks after it (":\n" is one token), so a prompt cut before a line break tokenizes otherwise.
TOKENIZER_STYLES = ("byte-level", "sentencepiece", "metaspace", "llama3")
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
    r"|\s+(?!\S)|\s+"
)
SPIECE = "\u2581"


def train_tokenizer(
    texts: Iterable[str],
    out_dir: str | Path,
    *,
    vocab_size: int = 1000,
    add_bos: bool = False,
    add_eos: bool = False,
    chat_template: str | None = None,
    split_digits: bool = False,
    style: str = "byte-level",
):
    """A BPE tokenizer trained on `texts`, in one of TOKENIZER_STYLES. add_eos appends </s> as T5's tokenizer
    does; add_bos prepends <s> as Llama's does; split_digits makes every digit its own token (as Llama's
    tokenizer does), so that a small model can learn arithmetic facts such as parity from the last digit."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if style not in TOKENIZER_STYLES:
        raise ValueError(f"Unknown tokenizer style {style!r}; choose one of {', '.join(TOKENIZER_STYLES)}.")
    digits = [pre_tokenizers.Digits(individual_digits=True)] if split_digits else []
    trainer_options = dict(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False)
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    if style in ("byte-level", "llama3"):
        if style == "byte-level":
            byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
            tokenizer.pre_tokenizer = pre_tokenizers.Sequence([*digits, byte_level]) if digits else byte_level
        else:
            split = pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated")
            byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
            tokenizer.pre_tokenizer = pre_tokenizers.Sequence([*digits, split, byte_level])
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), **trainer_options)
        tokenizer.train_from_iterator(texts, trainer=trainer)
    else:
        # Trained on words, as SentencePiece trains (no piece spans a word boundary), then given the pipeline
        # of the style, with the 256 byte tokens that byte fallback spells unknown characters with.
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [*digits, pre_tokenizers.Metaspace(replacement=SPIECE, prepend_scheme="always")]
        )
        # Line breaks left out of the vocabulary: Llama-2's spells them <0x0A>.
        words = (text.replace("\n", " ") for text in texts)
        tokenizer.train_from_iterator(words, trainer=trainers.BpeTrainer(**trainer_options))
        tokenizer = _with_byte_fallback(tokenizer)
        if style == "sentencepiece":
            tokenizer.normalizer = normalizers.Sequence(
                [normalizers.Prepend(SPIECE), normalizers.Replace(" ", SPIECE)]
            )
            tokenizer.pre_tokenizer = pre_tokenizers.Sequence(digits) if digits else None
        else:
            tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
                [*digits, pre_tokenizers.Metaspace(replacement=SPIECE, prepend_scheme="first", split=False)]
            )
        tokenizer.decoder = decoders.Sequence(
            [
                decoders.Replace(SPIECE, " "),
                decoders.ByteFallback(),
                decoders.Fuse(),
                decoders.Strip(content=" ", left=1, right=0),
            ]
        )
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


def _with_byte_fallback(tokenizer):
    """The trained BPE model with <0x00>..<0xFF> added to its vocabulary and byte fallback on."""
    import json

    from tokenizers import Tokenizer

    state = json.loads(tokenizer.to_str())
    vocab = state["model"]["vocab"]
    for byte in range(256):
        vocab.setdefault(f"<0x{byte:02X}>", len(vocab))
    state["model"].update(byte_fallback=True, fuse_unk=True)
    return Tokenizer.from_str(json.dumps(state))


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

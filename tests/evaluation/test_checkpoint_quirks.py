"""What real checkpoints bring that the tiny test models do not, each on a tiny look-alike built here: the fast
scorer must still equal the naive reference (one full forward per option) and lm-evaluation-harness.

- OPT's tokenizer puts "</s>" before every text, and "</s>" is also its unknown token;
- Granite divides its logits by `logits_scaling`, and any architecture may change them in forward();
- sliding-window attention (Mistral-7B-v0.1, Gemma-2/3, Phi-3) keeps only a window's last keys in its cache.
"""

from __future__ import annotations

import json

import pytest
import torch
import transformers

from evaluation.ml import scoring
from evaluation.ml.build import train_tokenizer
from evaluation.ml.config import ModelSpec, ScoreConfig
from evaluation.ml.encoding import Encoder
from evaluation.ml.families import CAUSAL
from evaluation.ml.forward import plain_output_head
from evaluation.ml.loading import load
from evaluation.ml.reference import score_naive
from evaluation.ml.scoring import ScoringItem
from tests.evaluation.tiny import CORPUS, lm_eval_logliks

ITEMS = [
    ScoringItem(
        "Answer the following question with the letter of the correct option.",
        "\nIs 14 even?\nAnswer:",
        ("A", "B", "it depends"),
    ),
    ScoringItem("Read this and answer.", " Which word does not belong? The answer is", ("yes", "no", "A")),
    ScoringItem("", "Is the number even or odd?\nAnswer:", ("A", "B")),
]
SMALL = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=256,
)


def sharpen(model):
    """Random weights far from the usual tiny init, so that attention is sharp and positions, the window
    and the logits' scale move the scores by whole nats, not by thousandths."""
    with torch.no_grad():
        model.get_input_embeddings().weight.normal_(0, 1.0)
        for name, weight in model.named_parameters():
            if name.endswith(("q_proj.weight", "k_proj.weight")):
                weight.normal_(0, 0.6)
            elif name.endswith(("v_proj.weight", "o_proj.weight")):
                weight.normal_(0, 0.4)


def scores(loaded, items=ITEMS):
    out = {}
    for batch in scoring.score(loaded, items, ScoreConfig(batch_size=2, device="cpu")):
        out.update(batch)
    return [list(out[i].logliks) for i in range(len(items))]


def largest_difference(a, b) -> float:
    return max(
        abs(x - y) for row_a, row_b in zip(a, b, strict=True) for x, y in zip(row_a, row_b, strict=True)
    )


def save(model, tokenizer, folder):
    sharpen(model)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return load(ModelSpec(str(folder), family="causal"), device="cpu")


def test_opt_whose_bos_is_its_unknown_token(tmp_path):
    """OPT (facebook/opt-*): GPT2Tokenizer with add_bos_token, bos = eos = unk = "</s>". The encoder once took
    the leading "</s>" (not special: it is the unknown token) for a token appended to every text and cut
    each text's last token: every letter option scored the same."""
    # As the hub ships it: vocab.json and merges.txt (no tokenizer.json) and the tokenizer_config's tokens.
    state = json.loads(
        train_tokenizer(CORPUS, tmp_path / "trained", vocab_size=400).backend_tokenizer.to_str()
    )
    vocab = dict(state["model"]["vocab"]) | {t["content"]: t["id"] for t in state["added_tokens"]}
    merges = [m if isinstance(m, str) else " ".join(m) for m in state["model"]["merges"]]
    (tmp_path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    tokens = dict(bos_token="</s>", eos_token="</s>", unk_token="</s>", pad_token="<pad>")
    config = dict(tokenizer_class="GPT2Tokenizer", add_bos_token=True, add_prefix_space=False, **tokens)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path)
    assert tokenizer("a")["input_ids"][0] == tokenizer.unk_token_id == tokenizer.bos_token_id
    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=0)
    model = transformers.OPTForCausalLM(
        transformers.OPTConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            ffn_dim=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=256,
            word_embed_proj_dim=32,
            **ids,
        )
    )
    loaded = save(model, tokenizer, tmp_path)
    for item, encoded in zip(ITEMS, scoring.encode_items(loaded, ITEMS), strict=True):
        for option, option_ids in zip(item.options, encoded.option_ids, strict=True):
            text = (item.shared + item.rest).rstrip() + " " + option
            assert [*encoded.shared_ids, *encoded.rest_ids, *option_ids] == tokenizer(text)["input_ids"]
    ours = scores(loaded)
    assert largest_difference(ours, [list(s.logliks) for s in score_naive(loaded, ITEMS)]) <= 1e-4
    assert largest_difference(ours, lm_eval_logliks(loaded, ITEMS)) <= 1e-4
    # Cut to a few tokens, the prompt keeps the "</s>" in front.
    encoder = Encoder(tokenizer, family=CAUSAL, max_tokens=4)
    assert encoder.encode(ITEMS[0].shared, ITEMS[0].rest, ["A"]).shared_ids[:1] == (tokenizer.bos_token_id,)


def test_logits_scaled_after_the_output_layer(tmp_path):
    """Granite divides its logits by config.logits_scaling; the fast path, which runs the output layer itself,
    must take the model's own forward for it, and for any architecture whose forward() changes its logits in
    a way no config field names (found by comparing the two once)."""
    tokenizer = train_tokenizer(CORPUS, tmp_path / "granite", vocab_size=400, add_bos=True)
    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=0)
    granite = transformers.GraniteForCausalLM(
        transformers.GraniteConfig(
            vocab_size=len(tokenizer), logits_scaling=8.0, num_key_value_heads=2, **SMALL, **ids
        )
    )
    loaded = save(granite, tokenizer, tmp_path / "granite")
    assert not plain_output_head(loaded.model)
    assert largest_difference(scores(loaded), [list(s.logliks) for s in score_naive(loaded, ITEMS)]) <= 1e-4

    class Doubled(transformers.LlamaForCausalLM):
        def forward(self, *args, **kwargs):
            out = super().forward(*args, **kwargs)
            out.logits = out.logits * 2
            return out

    llama = Doubled(
        transformers.LlamaConfig(vocab_size=len(tokenizer), num_key_value_heads=2, **SMALL, **ids)
    )
    sharpen(llama)
    llama.eval()
    loaded.model = llama
    assert not plain_output_head(llama)
    assert largest_difference(scores(loaded), [list(s.logliks) for s in score_naive(loaded, ITEMS)]) <= 1e-4


@pytest.mark.parametrize("arch", ["mistral", "gemma2"])
def test_a_shared_prefix_longer_than_the_attention_window(tmp_path, arch):
    """A sliding-window layer's cache keeps only the window's last keys: a phrasing's shared prefix longer
    than the window was read from that shortened cache (0.2 to 6 nats off on these look-alikes)."""
    tokenizer = train_tokenizer(CORPUS, tmp_path, vocab_size=400, add_bos=True)
    ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=0)
    if arch == "mistral":
        config = transformers.MistralConfig(
            vocab_size=len(tokenizer), sliding_window=8, num_key_value_heads=2, **SMALL, **ids
        )
        model = transformers.MistralForCausalLM(config)
    else:
        config = transformers.Gemma2Config(
            vocab_size=len(tokenizer), sliding_window=8, num_key_value_heads=1, head_dim=8, **SMALL, **ids
        )
        model = transformers.Gemma2ForCausalLM(config)
    loaded = save(model, tokenizer, tmp_path)
    encoded = scoring.encode_items(loaded, ITEMS)
    assert len(encoded[0].shared_ids) > 8  # the case: a prefix longer than the window
    ours = scores(loaded)
    assert largest_difference(ours, [list(s.logliks) for s in score_naive(loaded, ITEMS)]) <= 1e-4
    assert largest_difference(ours, lm_eval_logliks(loaded, ITEMS)) <= 1e-4
    # One phrasing, a short and a long instance in one batch, options of several tokens: the long row's
    # context outgrows the window, and the short row's cache was the batch's last (padding) positions.
    padded = [
        ScoringItem("Question:", " Is 14 even?", ("it depends", "yes no maybe")),
        ScoringItem(
            "Question:", " Which of these words does not belong with the others? " * 3, ("it depends", "no")
        ),
    ]
    assert (
        largest_difference(scores(loaded, padded), [list(s.logliks) for s in score_naive(loaded, padded)])
        <= 1e-4
    )

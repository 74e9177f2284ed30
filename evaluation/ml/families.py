"""Model families: encoder-decoder (seq2seq) and decoder-only (causal) models, in one table.

FAMILIES is the one list of them. ModelSpec accepts its names, the registry's choices are built from it
(evaluation/models.py), and an entry says how its models load (transformers' Auto class) and how PEFT's
prompt tuning wraps them. The code that differs by family sits beside the code it varies, in a dict keyed by
family that each of these modules keeps: how a prompt becomes token ids (encoding.ENCODINGS), how options are
scored fast (scoring.FAST_PATHS) and naively (reference.NAIVE_PATHS), and how a soft prompt's loss runs
(softprompt.FORWARDS). The table stays free of that code because every ML module reads it through config.py;
tests/evaluation/test_ml_families.py checks that each dict has every family. Adding a family: its entry here
and its function in each of those dicts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str  # as stored on LanguageModel.family and ModelSpec.family
    label: str  # as the registry shows it
    auto_class: str  # the transformers Auto class that loads its models
    peft_task_type: str  # the peft.TaskType its soft prompt is trained as


SEQ2SEQ = Family("seq2seq", "Encoder-decoder (seq2seq)", "AutoModelForSeq2SeqLM", "SEQ_2_SEQ_LM")
CAUSAL = Family("causal", "Decoder-only (causal)", "AutoModelForCausalLM", "CAUSAL_LM")

FAMILIES = {family.name: family for family in (SEQ2SEQ, CAUSAL)}

"""The family table (evaluation/ml/families.py): each family has every path that differs by family, names a
loader and a PEFT task type the installed releases have, and is a choice of the registry and its migrations.
The fast paths equal the reference per family in test_ml_scoring.py and test_ml_softprompt.py."""

from __future__ import annotations

import pytest
from django.db.migrations.loader import MigrationLoader

from evaluation.ml import encoding, reference, scoring, softprompt
from evaluation.ml.config import DTYPES, TRUNCATIONS, ConfigError, ModelSpec
from evaluation.ml.families import FAMILIES
from evaluation.ml.prompts import FORMATS
from evaluation.models import Dtype, LanguageModel, ModelFamily, PromptFormat, Truncation

PER_FAMILY = {
    "encoding": encoding.ENCODINGS,
    "fast scoring": scoring.FAST_PATHS,
    "naive reference": reference.NAIVE_PATHS,
    "soft-prompt loss": softprompt.FORWARDS,
}


@pytest.mark.parametrize("paths", PER_FAMILY.values(), ids=PER_FAMILY.keys())
def test_every_family_has_each_path_that_differs_by_family(paths):
    assert set(paths) == set(FAMILIES.values())


@pytest.mark.parametrize("family", FAMILIES.values(), ids=FAMILIES.keys())
def test_a_family_names_a_loader_and_a_peft_task_type_that_exist(family):
    import transformers
    from peft import TaskType

    assert callable(getattr(transformers, family.auto_class).from_pretrained)
    assert TaskType[family.peft_task_type]


def test_a_model_spec_takes_the_tables_names_and_no_other():
    for family in FAMILIES:
        for prompt_format in FORMATS:
            ModelSpec("some/model", family=family, prompt_format=prompt_format)
    with pytest.raises(ConfigError, match="family: must be one of seq2seq, causal"):
        ModelSpec("some/model", family="encoder")
    with pytest.raises(ConfigError, match="prompt_format: must be one of none, alpaca, chat"):
        ModelSpec("some/model", prompt_format="vicuna")


def test_the_registry_offers_exactly_the_tables_families_and_formats():
    assert ModelFamily.choices == [(family.name, family.label) for family in FAMILIES.values()]
    assert PromptFormat.choices == [(fmt.name, fmt.label) for fmt in FORMATS.values()]


def test_the_registrys_dtypes_and_truncations_are_the_ones_a_model_spec_takes():
    # Their labels are the registry's own; their names must be the spec's.
    assert Dtype.values == list(DTYPES)
    assert Truncation.values == list(TRUNCATIONS)


@pytest.mark.parametrize(
    "field, constraint", [("family", "model_family_valid"), ("prompt_format", "model_prompt_format_valid")]
)
def test_the_migrations_record_every_family_and_format(field, constraint):
    # A table entry added without `makemigrations` would be a choice the database's check refuses.
    state = MigrationLoader(None, ignore_no_migrations=True).project_state()
    model = state.models["evaluation", "languagemodel"]
    assert list(model.fields[field].choices) == list(LanguageModel._meta.get_field(field).choices)
    recorded = {c.name: c for c in model.options["constraints"]}
    declared = {c.name: c for c in LanguageModel._meta.constraints}
    assert recorded[constraint] == declared[constraint]

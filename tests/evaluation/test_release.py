"""Dataset releases out and back in: the demo scored by tiny-t5 (and its batch-calibrated variant) is exported,
read back with Hugging Face `datasets` and pyarrow and compared with the database, imported after everything
it holds is deleted (the leaderboard's figures must come back identical), and refused, changing nothing, when
a file is missing, damaged or of another schema."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from django.core.cache import cache
from django.core.management import CommandError, call_command

from collection import services as collection_services
from collection.demo import load_demo
from collection.models import Benchmark, Collection, Instance, Instruction, Task
from collection.selectors import task_eval_sample_ids
from evaluation.leaderboards import exports, selectors
from evaluation.models import (
    BenchmarkSummary,
    LanguageModel,
    ModelVariant,
    PhrasingSet,
    Prediction,
    TaskSummary,
)
from evaluation.releases import card, layout
from evaluation.releases.export import author_id
from evaluation.robustness import calibration
from evaluation.runs import registry

SAMPLE = 6


@pytest.fixture
def scored(db, tiny_models, alice, carol, django_capture_on_commit_callbacks):
    """The demo benchmark scored by tiny-t5 on SAMPLE instances a task, with its calibrated variant, plus one
    approved phrasing written by alice and one pending one (which a release leaves out)."""
    load_demo()
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=SAMPLE)
    parity = Task.objects.get(benchmark__slug="demo", slug="parity")
    with django_capture_on_commit_callbacks(execute=True):
        written = collection_services.instruction_submit(
            author=alice, task=parity, template="Tell me if {number} is even: yes or no?"
        )
        collection_services.instruction_review(instruction=written, reviewer=carol, status="approved")
        collection_services.instruction_submit(
            author=alice, task=parity, template="Pending: say whether {number} is even, yes or no."
        )
        model = registry.language_model_register(
            name="tiny-t5",
            source=str(tiny_models["t5"]),
            family="seq2seq",
            tuned_on=[Collection.objects.get(slug="demotune")],
        )
    with django_capture_on_commit_callbacks(execute=True):
        calibration.variant_calibrate(model=model)
    return model


def export(tmp_path: Path, name: str = "test") -> Path:
    call_command(
        "export_release", str(tmp_path), "--benchmark", "demo", "--name", name, "--release-version", "1"
    )
    return tmp_path / f"{name}-1"


def shards(root: Path, config: str) -> list[str]:
    return sorted(str(p) for p in (root / config).glob("train-*.parquet"))


def read(root: Path, config: str) -> pa.Table:
    """A config with pyarrow alone, all its shards."""
    return pq.read_table(shards(root, config))


def test_the_release_holds_approved_phrasings_public_models_and_every_prediction(scored, tmp_path, alice):
    root = export(tmp_path)
    assert sorted(p.name for p in root.iterdir()) == sorted(
        ["README.md", "SHA256SUMS", "figures.md", "release.json", *(c.name for c in layout.CONFIGS)]
    )
    approved = Instruction.objects.filter(task__benchmark__slug="demo", status="approved")
    variants = ModelVariant.objects.filter(model=scored)
    expected = {
        "tasks": Task.objects.filter(benchmark__slug="demo").count(),
        "instances": Instance.objects.filter(task__benchmark__slug="demo").count(),
        "phrasings": approved.count(),
        "models": variants.count(),
        "predictions": Prediction.objects.filter(
            variant__in=variants, revision_id__in=approved.values("current_revision_id")
        ).count(),
    }
    assert expected["models"] == 2 and expected["predictions"] > 0
    manifest = json.loads((root / "release.json").read_text(encoding="utf-8"))
    assert manifest["counts"] == expected
    for config, count in expected.items():
        table = read(root, config)
        assert table.num_rows == count, config
        assert table.column_names == layout.BY_NAME[config].names

    # Only approved phrasings: alice's pending one is not there, her approved one is, under an anonymous id.
    phrasings = {row["revision_id"]: row for row in read(root, "phrasings").to_pylist()}
    assert not any(row["template"].startswith("Pending:") for row in phrasings.values())
    (mine,) = [
        row for row in phrasings.values() if row["template"] == "Tell me if {number} is even: yes or no?"
    ]
    assert mine["author"] == author_id(alice.id) and mine["author"].startswith("u-")
    assert mine["status"] == "approved" and mine["collection"] == "crowd"
    assert {row["status"] for row in phrasings.values()} == {"approved"}

    # A model loaded from a local path is released without the path.
    models = {row["variant_kind"]: row for row in read(root, "models").to_pylist()}
    assert set(models) == {"base", "calibrated"}
    assert models["base"]["source"] == "(local path)" and str(scored.source) not in json.dumps(models)
    assert models["base"]["tuned_on"] == ["demotune"] and models["base"]["family"] == "seq2seq"

    # A sample of cells against the database.
    predictions = read(root, "predictions").to_pylist()
    for row in predictions[:: max(1, len(predictions) // 25)]:
        cell = Prediction.objects.select_related("instance").get(
            variant_id=row["variant_id"], revision_id=row["revision_id"], instance_id=row["instance_id"]
        )
        assert row["predicted_index"] == cell.predicted and row["correct"] == cell.correct
        assert row["gold_index"] == cell.instance.gold and row["truncated"] == cell.truncated
        assert row["option_lengths"] == cell.lengths
        assert row["option_logliks"] == cell.logliks
    # The cells the figures count: each phrasing's task's evaluation sample.
    task_of = {row["revision_id"]: row["task_id"] for row in phrasings.values()}
    samples = {
        task.id: set(task_eval_sample_ids(task)) for task in Task.objects.filter(benchmark__slug="demo")
    }
    assert all(
        row["in_eval_sample"] == (row["instance_id"] in samples[task_of[row["revision_id"]]])
        for row in predictions
    )
    assert sum(
        row["in_eval_sample"] for row in predictions if row["variant_id"] == models["base"]["variant_id"]
    ) == (SAMPLE * expected["phrasings"])


def test_the_card_s_features_and_counts_are_those_of_the_files(scored, tmp_path):
    datasets = pytest.importorskip("datasets")
    root = export(tmp_path)
    text = (root / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("---\n")[1])
    assert [c["config_name"] for c in front["configs"]] == [c.name for c in layout.CONFIGS]
    for info in front["dataset_info"]:
        files = shards(root, info["config_name"])
        schema = pq.read_schema(files[0])
        # The card's features, as `datasets` reads them, are the files' columns and types.
        assert [f["name"] for f in info["features"]] == schema.names
        assert datasets.Features._from_yaml_list(info["features"]).type == (
            datasets.Features.from_arrow_schema(schema).type
        )
        assert info["splits"][0]["num_examples"] == sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    # Loaded by `datasets`, with its files given and through the card: the same rows as pyarrow reads. Through
    # the card, the features are the card's and a wrong count raises NonMatchingSplitsSizesError.
    counts = json.loads((root / "release.json").read_text(encoding="utf-8"))["counts"]
    for config in layout.CONFIGS:
        by_files = datasets.load_dataset(
            "parquet",
            data_files={"train": shards(root, config.name)},
            split="train",
            cache_dir=str(tmp_path / "hf"),
        )
        by_card = datasets.load_dataset(str(root), config.name, split="train", cache_dir=str(tmp_path / "hf"))
        assert by_files.num_rows == by_card.num_rows == counts[config.name]
        assert by_files.column_names == by_card.column_names == config.names
        assert by_card[:20] == read(root, config.name).slice(0, 20).to_pydict()
    # Every file is listed with its hash.
    for line in (root / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ")
        assert hashlib.sha256((root / name).read_bytes()).hexdigest() == digest
    assert "figures.md" in text and "(local path)" in text


def _figures() -> dict:
    """Every figure the leaderboard and task pages read, keyed by what survives a round trip (names and slugs,
    never ids). Provenance is left out: an imported row's names the release it came from."""
    benchmark = Benchmark.objects.get(slug="demo")
    out = {}
    for phrasing_set in PhrasingSet.values:
        for kind in ["", *selectors.benchmark_task_kinds(benchmark)]:
            board = selectors.leaderboard(benchmark=benchmark, phrasing_set=phrasing_set, task_kind=kind)
            header, table, _ = exports.figure_rows([*board.rows, *board.partial, *board.estimated])
            keep = [i for i, name in enumerate(header) if name != "provenance"]
            out[("board", phrasing_set, kind)] = [[row[i] for i in keep] for row in table]
    for s in BenchmarkSummary.objects.select_related("variant__model"):
        out[("benchmark", s.variant.model.name, s.variant.kind, s.phrasing_set, s.task_kind)] = s.figures
    for s in TaskSummary.objects.select_related("variant__model", "task"):
        out[("task", s.variant.model.name, s.variant.kind, s.task.slug, s.phrasing_set)] = s.figures
    return out


def delete_demo() -> None:
    """Delete everything a release of the demo holds: the benchmark (its tasks, instances, phrasings, results)
    and the model (its variants and predictions). Phrasings point at their current revision (protected), so
    those links go first."""
    Instruction.objects.filter(task__benchmark__slug="demo").update(
        current_revision=None, reviewed_revision=None
    )
    Benchmark.objects.filter(slug="demo").delete()
    LanguageModel.objects.filter(name="tiny-t5").delete()


def test_exported_then_imported_into_an_emptied_database_the_figures_are_identical(scored, tmp_path):
    before = _figures()
    assert any(key[0] == "board" and rows for key, rows in before.items())
    root = export(tmp_path)
    task_ids = set(Task.objects.filter(benchmark__slug="demo").values_list("id", flat=True))

    delete_demo()
    assert not Prediction.objects.exists() and not BenchmarkSummary.objects.exists()
    call_command("import_release", str(root))
    # New ids for every task (the sequence goes on): benchmark intervals are seeded by task slug
    # (metrics.task_key), not id, so they come back all the same.
    assert not task_ids & set(Task.objects.filter(benchmark__slug="demo").values_list("id", flat=True))
    assert not LanguageModel.objects.get(name="tiny-t5").is_active

    cache.clear()
    after = _figures()
    assert after.keys() == before.keys()
    for key in before:
        assert after[key] == before[key], key
    # The imported variants say where they come from.
    assert set(ModelVariant.objects.values_list("provenance", flat=True)) == {
        "PhraseBench release test 1: tiny-t5",
        "PhraseBench release test 1: tiny-t5 + batch calibration",
    }


def test_into_a_database_that_holds_the_benchmark_phrasings_and_instances_are_matched(scored, tmp_path):
    root = export(tmp_path)
    counts = (Instruction.objects.count(), Instance.objects.count(), Task.objects.count())
    with pytest.raises(CommandError, match="a model named tiny-t5 exists here already"):
        call_command("import_release", str(root))
    assert not LanguageModel.objects.exclude(name="tiny-t5").exists()

    call_command("import_release", str(root), "--model-suffix=-release")
    assert (Instruction.objects.count(), Instance.objects.count(), Task.objects.count()) == counts
    original = ModelVariant.objects.get(model__name="tiny-t5", kind="base")
    imported = ModelVariant.objects.get(model__name="tiny-t5-release", kind="base")
    assert (
        Prediction.objects.filter(variant=imported).count()
        == Prediction.objects.filter(variant=original, revision__instruction__status="approved").count()
    )
    # The same tasks and phrasings: the same figures, to the last digit.
    for summary in TaskSummary.objects.filter(variant=original):
        assert (
            TaskSummary.objects.get(
                variant=imported, task=summary.task, phrasing_set=summary.phrasing_set
            ).figures
            == summary.figures
        )
    for summary in BenchmarkSummary.objects.filter(variant=original):
        assert (
            BenchmarkSummary.objects.get(
                variant=imported, phrasing_set=summary.phrasing_set, task_kind=summary.task_kind
            ).figures
            == summary.figures
        )


def _rehash(root: Path, changed: Path) -> None:
    """Make SHA256SUMS and release.json vouch for a changed file (so a later check is the one that fails)."""
    name = changed.relative_to(root).as_posix()
    digest = hashlib.sha256(changed.read_bytes()).hexdigest()
    manifest = json.loads((root / "release.json").read_text(encoding="utf-8"))
    for entry in manifest["configs"][name.split("/")[0]]:
        if entry["path"] == name:
            entry["sha256"] = digest
    (root / "release.json").write_text(json.dumps(manifest), encoding="utf-8")
    lines = []
    for line in (root / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        old, path = line.split("  ")
        if path in (name, "release.json"):
            old = hashlib.sha256((root / path).read_bytes()).hexdigest()
        lines.append(f"{old}  {path}\n")
    (root / "SHA256SUMS").write_text("".join(lines), encoding="utf-8")


def _missing_file(root: Path) -> None:
    (root / "phrasings" / "train-00000-of-00001.parquet").unlink()


def _damaged_file(root: Path) -> None:
    path = root / "predictions" / "train-00000-of-00001.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _wrong_schema(root: Path) -> None:
    # A predictions file whose log-likelihoods are float32 and whose `correct` column is missing.
    path = root / "predictions" / "train-00000-of-00001.parquet"
    table = pq.read_table(path).drop_columns(["correct"])
    logliks = table.schema.get_field_index("option_logliks")
    table = table.set_column(logliks, "option_logliks", table.column(logliks).cast(pa.list_(pa.float32())))
    pq.write_table(table, path)
    _rehash(root, path)


def _unknown_instance(root: Path) -> None:
    # Valid files, hashes and schema; one cell names an instance the release does not have.
    path = root / "predictions" / "train-00000-of-00001.parquet"
    table = pq.read_table(path)
    ids = table.column("instance_id").to_pylist()
    ids[-1] = 10**12
    table = table.set_column(
        table.schema.get_field_index("instance_id"), "instance_id", pa.array(ids, pa.int64())
    )
    pq.write_table(table, path)
    _rehash(root, path)


@pytest.mark.parametrize(
    "damage, message",
    [
        (_missing_file, "files listed in SHA256SUMS are missing"),
        (_damaged_file, "the file was changed or damaged"),
        (_wrong_schema, "not the predictions schema"),
        (_unknown_instance, "instance_id 1000000000000 is not in the release"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error_and_writes_nothing(scored, tmp_path, damage, message):
    root = export(tmp_path)
    damage(root)
    delete_demo()
    counts = [m.objects.count() for m in (Benchmark, Task, Instance, Instruction, LanguageModel, Prediction)]
    with pytest.raises(CommandError, match="nothing was changed") as refused:
        call_command("import_release", str(root))
    assert message in str(refused.value)
    assert [
        m.objects.count() for m in (Benchmark, Task, Instance, Instruction, LanguageModel, Prediction)
    ] == counts


def test_the_wrong_schema_error_names_each_column(scored, tmp_path):
    root = export(tmp_path)
    _wrong_schema(root)
    with pytest.raises(CommandError) as refused:
        call_command("import_release", str(root))
    assert "missing column correct (bool)" in str(refused.value)
    assert "column option_logliks is list<element: float>, expected list<item: double>" in str(refused.value)


def test_an_export_that_fails_leaves_no_directory(scored, tmp_path, monkeypatch):
    with pytest.raises(CommandError, match="No benchmark nope"):
        call_command("export_release", str(tmp_path), "--benchmark", "nope")

    # A failure after the data files are written (here, the card): the partial directory is removed.
    def broken_card(root, meta):
        raise OSError("disk full")

    monkeypatch.setattr(card, "card_text", broken_card)
    with pytest.raises(OSError, match="disk full"):
        export(tmp_path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    export(tmp_path)
    with pytest.raises(CommandError, match="exists already"):
        export(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["test-1"]


@pytest.mark.django_db
def test_soft_prompts_imported_from_a_release_keep_their_source_labels_apart():
    # Without a training here, two imported soft prompts were both "tiny-rel + soft prompt".
    model = LanguageModel.objects.create(
        name="tiny-rel", source="released", family="seq2seq", is_active=False
    )
    labels = {
        str(
            ModelVariant.objects.create(
                model=model, kind="soft_prompt", provenance=f"R 1: tiny + soft prompt{tail}"
            )
        )
        for tail in (" #3 (ce)", " #5 (ce+kl)", "")
    }
    assert labels == {
        "tiny-rel + soft prompt #3 (ce)",
        "tiny-rel + soft prompt #5 (ce+kl)",
        "tiny-rel + soft prompt",
    }

"""PromptEval-ready matrices (evaluation/releases/matrices.py, manage.py export_matrices): each matrix is the
variant's predictions, rows and columns carry their ids in the same order, the covariates have one row per
phrasing, partly scored phrasings are left out and listed, and the files round-trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from collection.demo import load_demo
from collection.models import Collection, Instance, Instruction, PhrasingEmbedding, Task
from collection.selectors import task_eval_sample_ids
from evaluation.models import LanguageModel
from evaluation.releases import matrices
from evaluation.runs import registry, scoring

SAMPLE = 6


@pytest.fixture
def scored(db, tiny_models, django_capture_on_commit_callbacks):
    """The demo benchmark (6 phrasings a task, 3 of them DemoTune's) scored by tiny-t5 on 6 instances."""
    load_demo()
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=SAMPLE)
    with django_capture_on_commit_callbacks(execute=True):
        model = registry.language_model_register(
            name="tiny-t5",
            source=str(tiny_models["t5"]),
            family="seq2seq",
            tuned_on=[Collection.objects.get(slug="demotune")],
        )
    return scoring.base_variant(model)


def parity() -> Task:
    return Task.objects.get(benchmark__slug="demo", slug="parity")


def test_the_matrix_is_the_variants_predictions_with_aligned_ids(scored):
    task = parity()
    m = matrices.task_matrix(scored, task)
    approved = Instruction.objects.filter(task=task, status="approved").order_by("current_revision_id")
    assert m.Y.dtype == np.int8 and m.Y.shape == (6, SAMPLE)
    assert list(m.revision_ids) == [i.current_revision_id for i in approved]
    assert list(m.phrasing_keys) == [i.stable_key for i in approved]
    assert list(m.templates) == [i.current_revision.template for i in approved]
    assert list(m.instance_ids) == task_eval_sample_ids(task)
    assert list(m.source_ids) == [Instance.objects.get(id=i).source_id for i in m.instance_ids]
    for r, revision_id in enumerate(m.revision_ids):
        for c, instance_id in enumerate(m.instance_ids):
            prediction = scored.predictions.get(revision_id=revision_id, instance_id=instance_id)
            assert m.Y[r, c] == prediction.correct
    assert list(m.observed) == [i.collection.slug == "demotune" for i in approved]
    assert list(m.collections) == [i.collection.slug for i in approved]
    assert (m.benchmark, m.task, m.variant, m.variant_kind, m.model) == (
        "demo",
        "parity",
        "tiny-t5",
        "base",
        "tiny-t5",
    )
    assert m.dropped_revision_ids.size == 0 and m.unscored == 0
    assert m.accuracy == pytest.approx(m.Y.mean(axis=1))


def test_the_covariates_have_one_row_per_phrasing(scored):
    m = matrices.task_matrix(scored, parity())
    assert m.X_emb.shape == (6, 384) and m.X_emb.dtype == np.float32
    assert np.linalg.norm(m.X_emb, axis=1) == pytest.approx(1.0, abs=1e-5)
    # The app's stored near-duplicate embeddings, the same model's, row for row.
    for row, revision_id in zip(m.X_emb, m.revision_ids):
        stored = PhrasingEmbedding.objects.get(revision_id=revision_id, model_name=m.embedding_model)
        assert np.array_equal(row, np.frombuffer(bytes(stored.vector), dtype=np.float32))
    assert m.embedding_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert m.X_disc.shape == (6, len(m.disc_names)) and m.X_disc.dtype == np.float32
    expected, names = matrices.discrete_features(list(m.templates))
    assert list(m.disc_names) == names and np.array_equal(m.X_disc, expected)
    without = matrices.task_matrix(scored, parity(), embeddings=False)
    assert without.X_emb.shape == (6, 0) and without.embedding_model == ""


def test_discrete_features_count_as_prompteval_does():
    x, names = matrices.discrete_features(['Q: Is {n} EVEN? (yes/no)\nAnswer: "yes" or no', "plain text"])
    row = dict(zip(names, x[0]))
    assert names[-2:] == ["framing:Answer:", "framing:Q:"]
    assert row["upper_words"] == 2  # "Q:" and "EVEN?" (str.isupper ignores the punctuation)
    assert row["lower_words"] == 5  # is, {n}, (yes/no), "yes", no
    assert row["title_words"] == 3  # Q:, Is, Answer:
    assert row["line_breaks"] == 1 and row["spaces"] == 7
    assert (row["colons"], row["question_marks"], row["double_quotes"]) == (2, 1, 2)
    assert (row["open_parens"], row["close_parens"], row["hyphens"]) == (1, 1, 0)
    assert row["length_plus_one"] == len('Q: Is {n} EVEN? (yes/no)\nAnswer: "yes" or no') + 1
    assert row["framing:Answer:"] == 1 and row["framing:Q:"] == 1
    assert dict(zip(names, x[1]))["framing:Q:"] == 0
    # A fixed vocabulary gives fixed columns whatever the templates.
    _, fixed = matrices.discrete_features(["Text: x"], vocabulary=["Answer:"])
    assert fixed[-1] == "framing:Answer:" and len(fixed) == len(matrices.BASE_FEATURES) + 1


def test_partly_scored_phrasings_are_left_out_and_listed(scored):
    task = parity()
    m = matrices.task_matrix(scored, task)
    partial, unscored = int(m.revision_ids[1]), int(m.revision_ids[4])
    some = scored.predictions.filter(revision_id=partial).order_by("id").values_list("id", flat=True)[:2]
    scored.predictions.filter(id__in=list(some)).delete()
    scored.predictions.filter(revision_id=unscored).delete()

    again = matrices.task_matrix(scored, task)
    assert list(again.revision_ids) == [r for r in m.revision_ids if r not in (partial, unscored)]
    assert list(again.dropped_revision_ids) == [partial]
    assert list(again.dropped_cells) == [SAMPLE - 2]
    assert again.unscored == 1
    keep = [list(m.revision_ids).index(r) for r in again.revision_ids]
    assert np.array_equal(again.Y, m.Y[keep])
    assert again.X_emb.shape[0] == again.X_disc.shape[0] == again.templates.size == 4
    # The framing vocabulary is the task's, so the columns stay those of the full matrix.
    assert list(again.disc_names) == list(m.disc_names)

    scored.predictions.filter(revision__instruction__task=task).delete()
    assert matrices.task_matrix(scored, task) is None


def test_export_writes_one_file_per_pair_and_an_index_that_round_trip(scored, tmp_path):
    out = tmp_path / "matrices"
    call_command("export_matrices", str(out), "--benchmark", "demo")
    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    assert index["format"] == matrices.FORMAT and index["format_version"] == matrices.FORMAT_VERSION
    rows = index["matrices"]
    assert sorted(r["task"] for r in rows) == ["larger-number", "odd-one-out", "parity", "sentiment"]
    assert all(set(r) == set(matrices.INDEX_COLUMNS) for r in rows)
    for row in rows:
        assert row["path"] == f"demo/{row['task']}/tiny-t5.npz"
        loaded = matrices.load(out / row["path"])
        built = matrices.task_matrix(scored, Task.objects.get(benchmark__slug="demo", slug=row["task"]))
        for name in ("Y", "revision_ids", "phrasing_keys", "instance_ids", "source_ids", "X_emb", "X_disc"):
            assert np.array_equal(getattr(loaded, name), getattr(built, name)), name
        assert loaded.Y.dtype == np.int8 and loaded.variant_id == scored.id
        assert (row["phrasings"], row["instances"]) == loaded.Y.shape
        assert row["mean_accuracy"] == pytest.approx(loaded.Y.mean(), abs=1e-6)
        # Plain numpy reads it, no pickle.
        with np.load(out / row["path"], allow_pickle=False) as raw:
            assert np.array_equal(raw["Y"], loaded.Y)
    import pyarrow.parquet as pq

    assert pq.read_table(out / "index.parquet").to_pylist() == rows
    assert [m.task for m in matrices.load_all(out)] == [r["task"] for r in rows]


def test_the_export_can_leave_out_embeddings_and_other_models(scored, tmp_path):
    call_command("export_matrices", str(tmp_path / "a"), "--no-embeddings")
    rows = matrices.read_index(tmp_path / "a")
    assert len(rows) == 4 and all(r["emb_dim"] == 0 for r in rows)
    # A model with no scored results here: none of tiny-t5's matrices.
    LanguageModel.objects.create(name="someone-else", source="/elsewhere", family="causal")
    call_command("export_matrices", str(tmp_path / "b"), "--model", "someone-else")
    assert matrices.read_index(tmp_path / "b") == []


def test_the_command_refuses_bad_input_clearly(scored, tmp_path):
    with pytest.raises(CommandError, match="No benchmark 'nope'"):
        call_command("export_matrices", str(tmp_path), "--benchmark", "nope")
    # A misspelt model used to export nothing and succeed ("Wrote 0 matrices").
    with pytest.raises(CommandError, match="No model named 'nope'"):
        call_command("export_matrices", str(tmp_path / "out"), "--model", "nope")
    assert not (tmp_path / "out").exists()
    afile = tmp_path / "file"
    afile.write_text("x", encoding="utf-8")
    with pytest.raises(CommandError, match="not a directory"):
        call_command("export_matrices", str(afile))
    with pytest.raises(ValueError, match="not a phrasebench-prompteval-matrices"):
        np.savez(tmp_path / "other.npz", Y=np.zeros((2, 2)))
        matrices.load(tmp_path / "other.npz")

"""Instance-level sensitivity to the phrasing: SCORE's Consistency rate and ProSA's PSS against hand-computed
cases, POSIX against a direct double loop over phrasing pairs, their bootstrap replicates against a direct
loop over each replicate's drawn phrasing pairs, the figures on the leaderboard API, n/a on published rows,
and each task's most fragile instances on the task page, the instance page and the results API.

Hand-computed case (3 phrasings, 4 instances; predicted option, gold in brackets):

instance:  x1 (0)  x2 (1)  x3 (1)  x4 (1)
p1          0       2       1       2
p2          0       1       1       2
p3          1       3       1       0

Pairs of phrasings: (p1, p2), (p1, p3), (p2, p3).
- same option:        x1 1 of 3, x2 0, x3 3, x4 1          -> Consistency rate = (1/3 + 0 + 1 + 1/3) / 4 = 5/12
- differ in correct:  x1 2 of 3, x2 2, x3 0, x4 0 (all wrong) -> PSS = (2/3 + 2/3 + 0 + 0) / 4 = 1/3
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from django.conf import settings
from django.urls import reverse

from collection.demo import load_demo
from collection.models import Instance, Instruction, Task
from collection.selectors import task_eval_sample_ids
from evaluation.leaderboards import aggregates, fragile
from evaluation.leaderboards.aggregates import aggregates_refresh_many
from evaluation.models import (
    BenchmarkSummary,
    ModelVariant,
    PhrasingResult,
    Prediction,
    TaskSummary,
    VariantKind,
)
from evaluation.stats import figure_registry, metrics
from tests.evaluation.published import imported_variant, synthetic_variant

PREDICTED = np.array([[0, 2, 1, 2], [0, 1, 1, 2], [1, 3, 1, 0]])
GOLD = np.array([0, 1, 1, 1])
CORRECT = PREDICTED == GOLD[None, :]
SENSITIVITY = ("consistency", "consistency_rate", "posix")


def direct_posix(logliks, lengths, predicted) -> np.ndarray:
    """The paper's psi per instance, by a double loop over ordered pairs of phrasings."""
    k, n = predicted.shape
    out = np.zeros(n)
    for x in range(n):
        total = 0.0
        for i in range(k):
            for j in range(k):
                if i != j:
                    y = predicted[j, x]
                    total += abs(logliks[i][x][y] - logliks[j][x][y]) / lengths[j][x][y]
        out[x] = total / (k * (k - 1))
    return out


def direct_pair_shares(correct, predicted) -> tuple[np.ndarray, np.ndarray]:
    """Per instance: the share of unordered pairs of phrasings that differ in correctness (PSS) and that
    predict the same option (Consistency rate)."""
    k, n = correct.shape
    pairs = list(itertools.combinations(range(k), 2))
    flips = [np.mean([correct[i, x] != correct[j, x] for i, j in pairs]) for x in range(n)]
    same = [np.mean([predicted[i, x] == predicted[j, x] for i, j in pairs]) for x in range(n)]
    return np.array(flips), np.array(same)


def random_cells(rng, k, n, options=4):
    logliks = rng.normal(-3, 1.5, (k, n, options))
    lengths = rng.integers(1, 5, (k, n, options)).astype(float)
    predicted = logliks.argmax(axis=2)
    return logliks, lengths, predicted


# --- Definitions against hand-computed and direct values -----------------------------------------------


def test_consistency_rate_and_pss_match_the_hand_computed_case():
    values = metrics.instance_sensitivity(CORRECT, PREDICTED)
    assert values["consistency_rate"] == pytest.approx([1 / 3, 0, 1, 1 / 3])
    assert values["flip_rate"] == pytest.approx([2 / 3, 2 / 3, 0, 0])
    assert values["posix"] is None  # no log-likelihoods given
    figures = metrics.point_figures(CORRECT, CORRECT.mean(axis=1), [False] * 3, predicted=PREDICTED)
    assert figures["consistency_rate"] == pytest.approx(5 / 12)
    # PSS is exactly 1 - Consistency: the registry keeps one figure for both.
    assert 1 - figures["consistency"] == pytest.approx(1 / 3)
    assert "pss" not in figure_registry.names()
    # Same option implies same correctness: the Consistency rate never exceeds 1 - flip rate.
    assert np.all(values["consistency_rate"] <= 1 - values["flip_rate"] + 1e-12)


def test_pss_and_consistency_rate_match_pairwise_loops_on_random_data():
    rng = np.random.default_rng(7)
    logliks, lengths, predicted = random_cells(rng, 6, 40)
    gold = rng.integers(0, 4, 40)
    correct = predicted == gold[None, :]
    flips, same = direct_pair_shares(correct, predicted)
    values = metrics.instance_sensitivity(correct, predicted)
    assert values["flip_rate"] == pytest.approx(flips)
    assert values["consistency_rate"] == pytest.approx(same)
    # ProSA's identity for binary correctness: S_x = k (K - k) / C(K, 2).
    right = correct.sum(axis=0)
    assert values["flip_rate"] == pytest.approx(right * (6 - right) / 15)


def test_posix_matches_a_direct_double_loop():
    rng = np.random.default_rng(11)
    logliks, lengths, predicted = random_cells(rng, 5, 25)
    correct = predicted == 0
    terms = figure_registry.pair_terms(logliks, lengths, predicted)
    assert terms.shape == (5, 5, 25) and np.all(terms[np.arange(5), np.arange(5)] == 0)
    want = direct_posix(logliks, lengths, predicted)
    values = metrics.instance_sensitivity(correct, predicted, terms)
    assert values["posix"] == pytest.approx(want)
    figures = metrics.point_figures(correct, correct.mean(axis=1), [False] * 5, posix_terms=terms)
    assert figures["posix"] == pytest.approx(want.mean())
    # The same response scored the same under every phrasing: no sensitivity at all.
    flat = np.broadcast_to(logliks[:1], logliks.shape)
    same = figure_registry.pair_terms(flat, lengths, np.broadcast_to(predicted[:1], predicted.shape))
    assert metrics.instance_sensitivity(correct, predicted, same)["posix"] == pytest.approx(np.zeros(25))


def test_the_paper_s_formula_not_the_released_code_s_transposed_one():
    # Two phrasings, one instance, two options: y_1 = option 0, y_2 = option 1.
    logliks = np.array([[[-1.0, -3.0]], [[-4.0, -2.0]]])
    lengths = np.array([[[1.0, 2.0]], [[1.0, 2.0]]])
    predicted = np.array([[0], [1]])
    # Paper: (|lp(y_2|x_1) - lp(y_2|x_2)| / L(y_2) + |lp(y_1|x_2) - lp(y_1|x_1)| / L(y_1)) / 2
    paper = (abs(-3.0 - -2.0) / 2 + abs(-4.0 - -1.0) / 1) / 2
    # The released code's |lp(y_i|x_j) - lp(y_j|x_j)| compares two responses under one prompt.
    code = (abs(-2.0 - -4.0) + abs(-3.0 - -1.0)) / 2
    terms = figure_registry.pair_terms(logliks, lengths, predicted)
    got = metrics.instance_sensitivity(predicted == 0, predicted, terms)["posix"][0]
    assert got == pytest.approx(paper) and got != pytest.approx(code)


def test_bootstrap_replicates_average_over_pairs_of_different_drawn_phrasings():
    rng = np.random.default_rng(3)
    logliks, lengths, predicted = random_cells(rng, 4, 12, options=3)
    correct = predicted == 1
    terms = figure_registry.pair_terms(logliks, lengths, predicted)
    observed = np.array([True, False, False, False])
    samples = 6
    reps = metrics.replicate_figures(
        np.random.default_rng(5), samples, observed, correct, predicted=predicted, posix_terms=terms
    )
    assert all(reps[name].shape == (samples,) for name in figure_registry.names())
    rows, counts = metrics.two_way_draws(np.random.default_rng(5), samples, 4, 12)
    for b in range(samples):
        slots = rows[b]
        pairs = [(s, t) for s in range(4) for t in range(4) if slots[s] != slots[t]]
        if not pairs:  # every slot drew the same phrasing: nothing to compare
            assert np.isnan(reps["posix"][b])
            continue
        per_x = np.array(
            [
                [
                    np.mean([terms[slots[s], slots[t], x] for s, t in pairs]),
                    np.mean([predicted[slots[s], x] == predicted[slots[t], x] for s, t in pairs]),
                    np.mean([correct[slots[s], x] != correct[slots[t], x] for s, t in pairs]),
                ]
                for x in range(12)
            ]
        )
        weighted = (per_x * counts[b][:, None]).sum(axis=0) / 12
        assert reps["posix"][b] == pytest.approx(weighted[0])
        assert reps["consistency_rate"][b] == pytest.approx(weighted[1])
        assert reps["consistency"][b] == pytest.approx(1 - weighted[2])
    # The pair figures draw nothing more: the other figures' replicates are the same without their inputs.
    plain = metrics.replicate_figures(np.random.default_rng(5), samples, observed, correct)
    for name in ("avgp", "std", "q10", "consistency"):
        assert plain[name] == pytest.approx(reps[name], nan_ok=True), name
    assert np.isnan(plain["consistency_rate"]).all() and np.isnan(plain["posix"]).all()


def test_intervals_sit_around_the_point_values():
    rng = np.random.default_rng(2)
    logliks, lengths, predicted = random_cells(rng, 5, 60)
    correct = predicted == rng.integers(0, 4, 60)[None, :]
    terms = figure_registry.pair_terms(logliks, lengths, predicted)
    summary = metrics.summarise(
        correct=correct, observed=[False] * 5, predicted=predicted, posix_terms=terms, samples=400
    )
    for name in SENSITIVITY:
        low, high = summary.ci[name]
        assert low < summary.figures[name] < high, name
    assert summary == metrics.summarise(
        correct=correct, observed=[False] * 5, predicted=predicted, posix_terms=terms, samples=400
    )  # seeded


def test_undefined_without_pairs_inputs_or_instances():
    one = metrics.summarise(
        correct=CORRECT[:1], observed=[False], predicted=PREDICTED[:1], samples=50, min_phrasings=1
    )
    assert one.consistency is None and one.consistency_rate is None and one.posix is None
    assert metrics.instance_sensitivity(CORRECT[:1], PREDICTED[:1])["flip_rate"] is None
    published = metrics.summarise(accuracies=[0.5, 0.6, 0.7], observed=[False] * 3, samples=50)
    assert all(getattr(published, name) is None for name in SENSITIVITY)
    with pytest.raises(ValueError, match="need a correctness matrix"):
        metrics.point_figures(None, np.array([0.5]), [False], predicted=PREDICTED[:1])
    with pytest.raises(ValueError, match="Predicted options are"):
        metrics.instance_sensitivity(CORRECT, PREDICTED[:, :2])
    empty = np.zeros((3, 0), dtype=bool)
    assert metrics.instance_sensitivity(empty, np.zeros((3, 0), dtype=int))["consistency_rate"].shape == (0,)


def test_a_task_keeps_its_pair_terms_in_step_with_its_phrasings():
    rng = np.random.default_rng(1)
    logliks, lengths, predicted = random_cells(rng, 4, 6)
    terms = figure_registry.pair_terms(logliks, lengths, predicted)
    data = metrics.TaskData(
        [True, False, True, False], correct=predicted == 0, predicted=predicted, posix_terms=terms
    )
    kept = data.rows(np.array([False, True, True, True]))
    assert np.array_equal(kept.predicted, predicted[1:])
    assert np.allclose(kept.posix_terms, figure_registry.pair_terms(logliks[1:], lengths[1:], predicted[1:]))


# --- Stored figures, the leaderboard API, published rows ---------------------------------------------


@pytest.fixture
def scored(db):
    """A model (never loaded) with hand-written predictions, log-likelihoods and lengths on every approved
    demo phrasing (the predicted option is the most likely one), summarised."""
    load_demo(generated_per_task=0)
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=8)
    return synthetic_variant("synthetic")


def task_cells(variant, task):
    """The task's cells read straight from the predictions: revisions and instances in id order."""
    revisions = sorted(
        PhrasingResult.objects.filter(variant=variant, task=task, complete=True).values_list(
            "revision_id", flat=True
        )
    )
    instances = task_eval_sample_ids(task)
    cells = {
        (p.revision_id, p.instance_id): p
        for p in Prediction.objects.filter(variant=variant, revision_id__in=revisions)
    }
    grid = [[cells[(r, x)] for x in instances] for r in revisions]
    correct = np.array([[c.correct for c in row] for row in grid])
    predicted = np.array([[c.predicted for c in row] for row in grid])
    logliks = [[c.logliks for c in row] for row in grid]
    lengths = [[c.lengths for c in row] for row in grid]
    return revisions, instances, correct, predicted, logliks, lengths


def test_stored_task_figures_equal_the_direct_computation(scored):
    for task in Task.objects.filter(benchmark__slug="demo"):
        _, _, correct, predicted, logliks, lengths = task_cells(scored, task)
        flips, same = direct_pair_shares(correct, predicted)
        posix = direct_posix(logliks, lengths, predicted)
        figures = TaskSummary.objects.get(variant=scored, task=task, phrasing_set="all").figures
        assert figures["consistency_rate"] == pytest.approx(same.mean()), task.slug
        assert figures["posix"] == pytest.approx(posix.mean()), task.slug
        assert 1 - figures["consistency"] == pytest.approx(flips.mean()), task.slug
        assert set(SENSITIVITY) <= set(figures["ci"])


def test_the_leaderboard_api_carries_the_sensitivity_figures(client, scored):
    body = client.get("/api/leaderboard/", {"benchmark": "demo"}).json()
    (row,) = body["results"]
    stored = BenchmarkSummary.objects.get(variant=scored, phrasing_set="all", task_kind="").figures
    tasks = Task.objects.filter(benchmark__slug="demo", parent__isnull=True)
    direct = {"consistency_rate": [], "posix": []}
    for task in tasks:
        _, _, correct, predicted, logliks, lengths = task_cells(scored, task)
        direct["consistency_rate"].append(direct_pair_shares(correct, predicted)[1].mean())
        direct["posix"].append(direct_posix(logliks, lengths, predicted).mean())
    for name in ("consistency_rate", "posix"):
        assert row[name] == pytest.approx(stored[name]) == pytest.approx(np.mean(direct[name])), name
        assert name in row["ci"]
    described = {f["name"]: f for f in body["figures"]}
    assert described["posix"]["unit"] == "ratio" and described["consistency_rate"]["spread"] is True
    # Every figure of the page's "every figure" table, with its tooltip.
    page = client.get(reverse("leaderboard", args=["demo"]), {"figures": "all"}).content.decode()
    assert ">Consistency rate<" in page and ">POSIX<" in page


def test_published_rows_have_no_sensitivity_figures(client, scored):
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    phrasings = Instruction.objects.filter(task=task, status="approved")
    published = imported_variant("paper-model", {i: 0.5 + 0.05 * n for n, i in enumerate(phrasings)})
    figures = TaskSummary.objects.get(variant=published, task=task, phrasing_set="all").figures
    assert figures["std"] is not None
    assert all(figures[name] is None for name in SENSITIVITY)
    body = client.get("/api/leaderboard/", {"benchmark": "demo", "partial": "1"}).json()
    rows = [r for r in body["results"] + body.get("partial", []) if r["variant_id"] == published.id]
    assert rows and all(r[name] is None for r in rows for name in SENSITIVITY)
    page = client.get(reverse("leaderboard", args=["demo"]), {"figures": "all", "partial": "1"})
    assert "Published results have no per-instance data, so no POSIX." in page.content.decode()
    assert fragile.fragile_instances(published, task).note == "Published results have no per-instance data."


def test_batch_calibrated_scores_give_no_posix(scored):
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    calibrated = ModelVariant.objects.create(model=scored.model, kind=VariantKind.CALIBRATED)
    Prediction.objects.bulk_create(
        Prediction(
            variant=calibrated,
            revision_id=p.revision_id,
            instance_id=p.instance_id,
            logliks=p.logliks,
            lengths=p.lengths,
            predicted=p.predicted,
            correct=p.correct,
        )
        for p in Prediction.objects.filter(variant=scored, revision__instruction__task=task)
    )
    aggregates_refresh_many({(calibrated.id, task.id)})
    data = aggregates.task_data(calibrated, task)
    assert data.predicted is not None and data.posix_terms is None


def test_unusable_log_likelihoods_make_posix_na_not_wrong(scored):
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    cell = Prediction.objects.filter(variant=scored, revision__instruction__task=task).first()
    cell.lengths = [0] * len(cell.lengths)  # an option of no tokens: no per-token figure
    cell.save(update_fields=["lengths"])
    aggregates_refresh_many({(scored.id, task.id)})
    figures = TaskSummary.objects.get(variant=scored, task=task, phrasing_set="all").figures
    assert figures["posix"] is None and figures["consistency_rate"] is not None


# --- The most fragile instances -----------------------------------------------------------------------


def expected_order(variant, task) -> list[int]:
    """Instance ids by flip rate, then POSIX (descending), leaving out those with one answer throughout."""
    _, instances, correct, predicted, logliks, lengths = task_cells(variant, task)
    flips, same = direct_pair_shares(correct, predicted)
    posix = direct_posix(logliks, lengths, predicted)
    moving = [x for x in range(len(instances)) if same[x] < 1]
    moving.sort(key=lambda x: (-flips[x], -posix[x], same[x], x))
    return [instances[x] for x in moving]


def test_fragile_instances_rank_by_flip_rate_then_posix(scored):
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    found = fragile.fragile_instances(scored, task, top=50)
    want = expected_order(scored, task)
    assert want and [item.instance_id for item in found.items] == want
    revisions, instances, correct, predicted, _, _ = task_cells(scored, task)
    first = found.items[0]
    x = instances.index(first.instance_id)
    assert [a.revision_id for a in first.answers] == revisions
    assert [a.predicted for a in first.answers] == list(predicted[:, x])
    assert [a.correct for a in first.answers] == list(correct[:, x])
    assert (
        first.right == correct[:, x].sum() and first.gold == Instance.objects.get(id=first.instance_id).gold
    )
    assert len(fragile.fragile_instances(scored, task, top=2).items) == min(2, len(want))


def test_the_task_page_lists_each_chosen_variant_s_fragile_instances(client, scored):
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    url = reverse("task_detail", args=["demo", "parity"])
    page = client.get(url, {"variant": scored.id}).content.decode()
    assert "Most fragile instances" in page and f'data-variant="{scored.id}"' in page
    links = [reverse("task_instance", args=["demo", "parity", x]) for x in expected_order(scored, task)]
    positions = [page.index(f'href="{link}?variant={scored.id}"') for link in links[: fragile.TOP]]
    assert positions == sorted(positions)  # listed most fragile first
    # The first scored variant by default; an id that is not one, or not a number, is ignored.
    assert f'data-variant="{scored.id}"' in client.get(url).content.decode()
    assert client.get(url, {"variant": ["abc", "999999"]}).status_code == 200


def test_the_instance_page_shows_its_predictions_under_every_phrasing(client, scored):
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    instance_id = expected_order(scored, task)[0]
    url = reverse("task_instance", args=["demo", "parity", instance_id])
    response = client.get(url, {"variant": scored.id})
    assert response.status_code == 200
    page = response.content.decode()
    approved = list(Instruction.objects.filter(task=task, status="approved"))
    for instruction in approved:
        assert f'id="phrasing-{instruction.id}"' in page
    right = Prediction.objects.filter(variant=scored, instance_id=instance_id, correct=True).count()
    assert f"{right} of {len(approved)} phrasings get it right" in page
    assert fragile.fragile_instances(scored, task, top=50).phrasings == len(approved)
    # A retired phrasing leaves the instance page and the fragile list at once, before any refresh.
    retired = approved[0]
    Instruction.objects.filter(id=retired.id).update(status="retired")
    assert f'id="phrasing-{retired.id}"' not in client.get(url, {"variant": scored.id}).content.decode()
    listed = fragile.fragile_instances(scored, task, top=50)
    assert all(a.instruction_id != retired.id for item in listed.items for a in item.answers)
    assert listed.phrasings == len(approved) - 1


def test_odd_input_gives_no_server_error(client, scored):
    other = Task.objects.get(benchmark__slug="demo", slug="sentiment")
    foreign = task_eval_sample_ids(other)[0]
    assert client.get(reverse("task_instance", args=["demo", "parity", foreign])).status_code == 404
    huge = "/b/demo/t/parity/instances/99999999999999999999999/"
    assert client.get(huge).status_code == 404
    for args in (["nosuch", "parity", foreign], ["demo", "nosuch", foreign]):
        assert client.get(reverse("task_instance", args=args)).status_code == 404
    # A task with one phrasing: no pairs to compare, said so.
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    keep = Instruction.objects.filter(task=task, status="approved").first()
    Instruction.objects.filter(task=task, status="approved").exclude(id=keep.id).update(status="retired")
    aggregates_refresh_many({(scored.id, task.id)})
    figures = TaskSummary.objects.get(variant=scored, task=task, phrasing_set="all").figures
    assert all(figures[name] is None for name in SENSITIVITY)
    page = client.get(reverse("task_detail", args=["demo", "parity"]), {"variant": scored.id})
    assert page.status_code == 200 and "Needs two phrasings" in page.content.decode()


def test_a_task_without_predictions_has_no_list_and_no_error(client, db):
    load_demo(generated_per_task=0)
    page = client.get(reverse("task_detail", args=["demo", "parity"]))
    assert page.status_code == 200 and "Most fragile instances" not in page.content.decode()
    instance = task_eval_sample_ids(Task.objects.get(benchmark__slug="demo", slug="parity"))[0]
    response = client.get(reverse("task_instance", args=["demo", "parity", instance]))
    assert response.status_code == 200 and "No model is scored on this task yet." in response.content.decode()


def test_the_results_api_includes_the_fragile_lists_on_request(client, scored):
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    plain = client.get("/api/results/", {"task": task.id}).json()
    assert "fragile" not in plain
    body = client.get("/api/results/", {"task": task.id, "include": "fragile", "fragile_top": 3}).json()
    assert body["count"] == plain["count"]
    (listed,) = body["fragile"]
    assert listed["variant_id"] == scored.id and listed["model"] == "synthetic"
    ids = [item["instance_id"] for item in listed["instances_listed"]]
    assert ids == expected_order(scored, task)[:3]
    first = listed["instances_listed"][0]
    assert {"flip_rate", "consistency_rate", "posix", "gold", "snippet", "answers"} <= set(first)
    assert {"instruction_id", "predicted", "option", "answer", "correct"} <= set(first["answers"][0])
    # Filters narrow the variants listed; bad requests say why.
    narrowed = client.get("/api/results/", {"task": task.id, "include": "fragile", "model": "nobody"}).json()
    assert narrowed["fragile"] == []
    assert client.get("/api/results/", {"include": "fragile"}).status_code == 400
    assert client.get("/api/results/", {"task": task.id, "include": "everything"}).status_code == 400
    for top in ("0", "abc", "51"):
        bad = client.get("/api/results/", {"task": task.id, "include": "fragile", "fragile_top": top})
        assert bad.status_code == 400, top


@pytest.mark.parametrize("name", SENSITIVITY)
def test_the_sensitivity_figures_are_spread_figures_needing_instances(name):
    figure = figure_registry.get(name)
    assert figure.spread and figure.needs == "instances" and figure.column
    assert settings.SPREAD_MIN_PHRASINGS >= 2

"""Citable leaderboard snapshots: a snapshot holds exactly what the leaderboard API said, its page and API stay
byte for byte the same while the live leaderboard moves on (approvals, retirements, new scores), and the diff
says what changed between two snapshots (evaluation/stats/snapshot_diff.py)."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from collection import services as collection_services
from collection.demo import load_demo
from collection.models import Benchmark, Collection, Instruction, Task
from evaluation.leaderboards.aggregates import aggregates_refresh_many
from evaluation.models import LeaderboardSnapshot, PhrasingResult
from evaluation.stats import snapshot_diff
from tests.evaluation.published import imported_variant

pytestmark = pytest.mark.django_db

QUERY = {"benchmark": "demo", "set": "all", "kind": "", "sort": "avgp", "dir": "desc", "partial": "0"}


@pytest.fixture
def board(db):
    """Three published rows on every demo phrasing: `strong` well above the twins, who cannot be told apart
    (as tests/evaluation/test_rank_intervals.py builds them)."""
    load_demo(generated_per_task=0)
    rng = np.random.default_rng(0)
    rows = {"strong": {}, "twin-a": {}, "twin-b": {}}
    for task in Task.objects.filter(benchmark__slug="demo"):
        phrasings = list(task.instructions.filter(status="approved").order_by("id"))
        noise = rng.normal(0, 0.06, len(phrasings))
        noise -= noise.mean()
        for instruction, e in zip(phrasings, noise, strict=True):
            base = float(rng.uniform(0.45, 0.6))
            rows["twin-a"][instruction], rows["twin-b"][instruction] = base, float(np.clip(base + e, 0, 1))
            rows["strong"][instruction] = base + 0.25
    return {name: imported_variant(name, accuracies) for name, accuracies in rows.items()}


@pytest.fixture
def alice_client(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def _freeze(client: Client, **params) -> dict:
    response = client.post(
        "/api/snapshots/", {"benchmark": "demo", **params}, content_type="application/json"
    )
    assert response.status_code in (200, 201), response.content
    return response.json()


def _main(html: bytes) -> str:
    """The page's content, without the layout around it (which carries a fresh CSRF token each time)."""
    match = re.search(r"<main>(.*)</main>", html.decode(), re.S)
    assert match
    return match.group(1)


def _approve_new_phrasing(board, alice, carol, *, accuracy: float = 0.2) -> Instruction:
    """A phrasing written by alice and approved by carol, with published accuracies for every row on it."""
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    instruction = collection_services.instruction_create(
        task=task,
        template="Parity check, new wording: {number}",
        collection=Collection.objects.get(slug="crowd"),
        author=alice,
    )
    collection_services.instruction_review(
        instruction=instruction,
        reviewer=carol,
        status="approved",
        revision=instruction.current_revision_id,
    )
    for variant in board.values():
        PhrasingResult.objects.create(
            variant=variant,
            revision=instruction.current_revision,
            task=task,
            accuracy=accuracy,
            source="imported",
        )
    aggregates_refresh_many({(variant.id, task.id) for variant in board.values()})
    return instruction


# --- Freezing ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [{}, {"set": "unobserved", "sort": "q10", "dir": "asc", "partial": True}, {"sort": "model"}],
    ids=["default", "another-view", "by-name"],
)
def test_a_snapshot_holds_exactly_what_the_live_api_said(client, alice_client, board, params):
    made = _freeze(alice_client, **params)
    snapshot = LeaderboardSnapshot.objects.get(public_id=made["id"])
    live = client.get("/api/leaderboard/", made["view"])
    assert live.status_code == 200
    assert snapshot.payload.encode() == live.content
    assert made["sha256"] == snapshot.sha256 == hashlib.sha256(live.content).hexdigest()
    frozen = client.get(f"/api/snapshots/{made['id']}/leaderboard/")
    assert frozen["Content-Type"] == "application/json" and frozen.content == live.content
    detail = client.get(f"/api/snapshots/{made['id']}/").json()
    assert detail["leaderboard"] == json.loads(live.content)
    assert detail["url"].endswith(f"/snapshots/{made['id']}/") and detail["created_by"] == "alice"
    assert made["view"]["sort"] == params.get("sort", "avgp")


def test_freezing_an_unchanged_view_finds_the_snapshot_already_made(alice_client, bob, board):
    first = alice_client.post("/api/snapshots/", {"benchmark": "demo"}, content_type="application/json")
    assert first.status_code == 201 and first["Location"] == first.json()["url"]
    bob_client = Client()
    bob_client.force_login(bob)
    again = bob_client.post("/api/snapshots/", {"benchmark": "demo"}, content_type="application/json")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    other_view = _freeze(alice_client, sort="q10")
    assert other_view["id"] != first.json()["id"]
    assert LeaderboardSnapshot.objects.count() == 2


def test_a_snapshot_stays_the_same_after_approvals_and_retirements(client, alice, carol, alice_client, board):
    made = _freeze(alice_client)
    url = f"/snapshots/{made['id']}/"
    page, api, frozen = (
        client.get(url),
        client.get(f"/api/snapshots/{made['id']}/"),
        client.get(made["leaderboard_url"]),
    )
    live_before = client.get("/api/leaderboard/", QUERY).json()
    instruction = _approve_new_phrasing(board, alice, carol)

    live_after = client.get("/api/leaderboard/", QUERY).json()
    assert live_after["ground"]["phrasings"] == live_before["ground"]["phrasings"] + 1
    assert live_after["results"] != live_before["results"]
    assert _main(client.get(url).content) == _main(page.content)
    assert client.get(f"/api/snapshots/{made['id']}/").content == api.content
    assert client.get(made["leaderboard_url"]).content == frozen.content

    collection_services.instruction_review(instruction=instruction, reviewer=carol, status="retired")
    aggregates_refresh_many({(variant.id, instruction.task_id) for variant in board.values()})
    assert _main(client.get(url).content) == _main(page.content)
    assert client.get(f"/api/snapshots/{made['id']}/").content == api.content


def test_a_new_freeze_after_a_change_is_a_new_snapshot_and_the_old_one_keeps_its_rows(
    client, alice, carol, alice_client, board
):
    old = _freeze(alice_client)
    frozen = client.get(old["leaderboard_url"]).content
    _approve_new_phrasing(board, alice, carol)
    new = _freeze(alice_client)
    assert new["id"] != old["id"] and new["sha256"] != old["sha256"]
    assert new["data_version"] != old["data_version"]
    assert client.get(old["leaderboard_url"]).content == frozen
    assert json.loads(client.get(new["leaderboard_url"]).content)["ground"]["phrasings"] == 25


def test_a_snapshot_keeps_its_benchmark_as_it_was_and_outlives_it(client, alice_client, board):
    made = _freeze(alice_client)
    frozen, page = (
        client.get(made["leaderboard_url"]).content,
        _main(client.get(f"/snapshots/{made['id']}/").content),
    )
    Benchmark.objects.filter(slug="demo").update(name="Renamed")
    assert _main(client.get(f"/snapshots/{made['id']}/").content) == page
    # A benchmark cannot be deleted while it has phrasings (Task.benchmark protects it); if one ever is, its
    # snapshots lose the link (SET_NULL) and keep the slug, name and answer they copied.
    LeaderboardSnapshot.objects.update(benchmark=None)
    assert client.get(made["leaderboard_url"]).content == frozen
    html = client.get(f"/snapshots/{made['id']}/").content.decode()
    assert "strong" in html and "Demo" in html and "The live leaderboard" not in html


# --- The pages ---------------------------------------------------------------------------------------------


def test_the_leaderboard_links_to_freezing_its_view(client, board):
    page = client.get(
        "/b/demo/leaderboard/", {"set": "unobserved", "sort": "q10", "dir": "asc"}
    ).content.decode()
    link = re.search(r'<a href="([^"]+)">Freeze this view</a>', page).group(1).replace("&amp;", "&")
    assert link.startswith("/b/demo/leaderboard/freeze/?")
    assert "set=unobserved" in link and "sort=q10" in link and "dir=asc" in link


def test_a_signed_in_user_freezes_a_view_from_the_page(client, alice_client, board):
    query = "set=all&kind=&sort=q10&dir=desc"
    form = alice_client.get(f"/b/demo/leaderboard/freeze/?{query}")
    assert form.status_code == 200 and "Freeze this leaderboard" in form.content.decode()
    response = alice_client.post(
        "/b/demo/leaderboard/freeze/",
        {
            "set": "all",
            "kind": "",
            "sort": "q10",
            "dir": "desc",
            "title": "Table 2 of our paper",
            "note": "x",
        },
    )
    snapshot = LeaderboardSnapshot.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/snapshots/{snapshot.public_id}/"
    assert snapshot.sort == "q10" and snapshot.title == "Table 2 of our paper"
    assert snapshot.created_by.username == "alice"
    page = alice_client.get(response["Location"]).content.decode()
    assert f"Frozen as snapshot {snapshot.public_id}" in page
    html = client.get(response["Location"]).content.decode()
    assert "Table 2 of our paper" in html and snapshot.sha256 in html
    assert f"@misc{{phrasebench-{snapshot.public_id}," in html
    assert f"http://testserver/snapshots/{snapshot.public_id}/" in html
    # The ranked rows with their rank intervals and tie bands, as frozen.
    assert 'data-tie-group="1"' in html and 'data-tie-group="2"' in html
    assert "Common ground:" in html and "24 (task, phrasing) pairs" in html


def test_anonymous_freezes_are_refused(client, board):
    assert client.get("/b/demo/leaderboard/freeze/").status_code == 302
    page = client.post("/b/demo/leaderboard/freeze/", {"set": "all"})
    assert page.status_code == 302 and page["Location"].startswith("/accounts/login/")
    api = client.post("/api/snapshots/", {"benchmark": "demo"}, content_type="application/json")
    assert api.status_code in (401, 403)
    assert not LeaderboardSnapshot.objects.exists()


@pytest.mark.parametrize(
    "params,message",
    [
        ({"kind": "nosuch"}, "kind must be blank"),
        ({"sort": "bogus"}, "sort must be one of"),
        ({"set": "nosuch"}, "set must be one of"),
        ({"dir": "up"}, "dir must be asc or desc"),
        ({"partial": "maybe"}, "partial must be 1 or 0"),
    ],
)
def test_a_view_that_does_not_exist_is_refused_with_its_reason(alice_client, board, params, message):
    page = alice_client.post("/b/demo/leaderboard/freeze/", params)
    assert page.status_code == 400 and message in page.content.decode()
    api = alice_client.post(
        "/api/snapshots/", {"benchmark": "demo", **params}, content_type="application/json"
    )
    assert api.status_code == 400
    assert not LeaderboardSnapshot.objects.exists()


def test_the_api_refuses_an_unknown_benchmark_and_overlong_text(alice_client, board):
    response = alice_client.post("/api/snapshots/", {"benchmark": "nosuch"}, content_type="application/json")
    assert response.status_code == 400 and "no benchmark" in response.json()["detail"]
    response = alice_client.post(
        "/api/snapshots/", {"benchmark": "demo", "title": "x" * 201}, content_type="application/json"
    )
    assert response.status_code == 400
    page = alice_client.post("/b/demo/leaderboard/freeze/", {"note": "x" * 2001})
    assert page.status_code == 400 and "at most 2000" in page.content.decode()
    assert not LeaderboardSnapshot.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "/snapshots/NOPE/",
        "/snapshots/0000000000/",
        "/snapshots/il0u/",
        "/snapshots/0000000000/diff/",
        "/snapshots/0000000000/diff/0000000001/",
        "/api/snapshots/0000000000/",
        "/api/snapshots/nope!/",
        "/api/snapshots/0000000000/leaderboard/",
        "/api/snapshots/0000000000/diff/0000000001/",
        "/b/nosuch/snapshots/",
    ],
)
def test_an_id_that_names_no_snapshot_is_a_404(client, url):
    response = client.get(url)
    assert response.status_code == 404
    if url.startswith("/api/"):
        assert "detail" in response.json()


def test_a_diff_against_an_unknown_snapshot_is_a_404(client, alice_client, board):
    made = _freeze(alice_client)
    assert client.get(f"/snapshots/{made['id']}/diff/0000000000/").status_code == 404
    assert client.get(f"/snapshots/{made['id']}/diff/", {"to": "bad id"}).status_code == 404
    assert client.get(f"/api/snapshots/{made['id']}/diff/0000000000/").status_code == 404
    assert client.get(f"/snapshots/{made['id']}/diff/")["Location"] == f"/snapshots/{made['id']}/"


def test_the_lists_show_every_snapshot_in_a_fixed_number_of_queries(
    client, alice_client, board, django_assert_max_num_queries
):
    made = [_freeze(alice_client, sort=sort)["id"] for sort in ("avgp", "q10", "spread", "std")]
    with django_assert_max_num_queries(4):
        every = client.get("/snapshots/").content.decode()
    with django_assert_max_num_queries(5):
        demo = client.get("/b/demo/snapshots/").content.decode()
    assert all(public_id in every and public_id in demo for public_id in made)
    # A snapshot's page: the snapshot and the others to compare with, nothing of the live leaderboard.
    with django_assert_max_num_queries(2):
        assert client.get(f"/snapshots/{made[0]}/").status_code == 200
    api = client.get("/api/snapshots/", {"benchmark": "demo"}).json()
    assert {row["id"] for row in api["results"]} == set(made) and "leaderboard" not in api["results"][0]
    assert client.get("/api/snapshots/", {"benchmark": "other"}).json()["results"] == []


# --- What changed ------------------------------------------------------------------------------------------


def test_the_diff_page_lists_what_changed(client, alice, carol, alice_client, board):
    old = _freeze(alice_client)
    # strong falls 40 points on every phrasing; a new model arrives; a new phrasing is approved.
    PhrasingResult.objects.filter(variant=board["strong"]).update(accuracy=0.35)
    aggregates_refresh_many({(board["strong"].id, t.id) for t in Task.objects.filter(benchmark__slug="demo")})
    _approve_new_phrasing(board, alice, carol)
    newcomer = imported_variant(
        "newcomer",
        {i: 0.9 for i in Instruction.objects.filter(task__benchmark__slug="demo", status="approved")},
    )
    new = _freeze(alice_client)

    # The snapshot page offers the other one; its form leads to the diff, older to newer.
    page = client.get(f"/snapshots/{new['id']}/").content.decode()
    assert f'<option value="{old["id"]}">' in page
    picked = client.get(f"/snapshots/{new['id']}/diff/", {"to": old["id"]})
    assert picked["Location"] == f"/snapshots/{old['id']}/diff/{new['id']}/"

    html = client.get(picked["Location"]).content.decode()
    added = re.search(r'<section id="added">.*?</section>', html, re.S).group(0)
    assert "newcomer" in added
    ranks = re.search(r'<table class="figures keyed" id="rank-changes">.*?</table>', html, re.S).group(0)
    strong_row = re.search(rf'<tr data-variant="{board["strong"].id}">.*?</tr>', ranks, re.S).group(0)
    assert "1 → <strong>" in strong_row
    flagged = re.search(r'<table class="figures keyed" id="flagged-changes">.*?</table>', html, re.S).group(0)
    assert re.search(r"strong \(imported\)</td><td[^>]*>AvgP</td>", flagged)
    assert "beyond its interval" in flagged and "intervals disjoint" in flagged
    assert "95% interval for that figure (beyond its interval)" in html  # the rule, on the page
    assert "phrasings 24 → 25" in html

    api = client.get(f"/api/snapshots/{old['id']}/diff/{new['id']}/").json()
    assert [r["variant_id"] for r in api["added"]] == [newcomer.id]
    strong = next(r for r in api["changed"] if r["variant_id"] == board["strong"].id)
    avgp = next(f for f in strong["figures"] if f["name"] == "avgp")
    assert avgp["status"] == "beyond" and avgp["flagged"] and avgp["disjoint"] and avgp["delta"] < -0.3


def test_a_diff_of_two_benchmarks_is_refused_with_its_reason(client, alice_client, board):
    made = _freeze(alice_client)
    other = Benchmark.objects.create(slug="other", name="Other")
    snapshot = LeaderboardSnapshot.objects.get(public_id=made["id"])
    LeaderboardSnapshot.objects.create(
        public_id="zzzzzzzzzz",
        benchmark=other,
        benchmark_slug="other",
        benchmark_name="Other",
        phrasing_set="all",
        sort="avgp",
        data_version=[None, 0, None, 0],
        payload=snapshot.payload,
        sha256=snapshot.sha256,
    )
    page = client.get(f"/snapshots/{made['id']}/diff/zzzzzzzzzz/")
    assert page.status_code == 400 and "different benchmarks" in page.content.decode()
    assert client.get(f"/api/snapshots/{made['id']}/diff/zzzzzzzzzz/").status_code == 400


def test_a_diff_of_a_snapshot_with_itself_says_nothing_changed(client, alice_client, board):
    made = _freeze(alice_client)
    html = client.get(f"/snapshots/{made['id']}/diff/{made['id']}/").content.decode()
    assert "Nothing changed" in html


def _row(key, label, rank=None, group=None, **figures) -> dict:
    values = {name: value for name, (value, _) in figures.items()}
    intervals = {name: ci for name, (_, ci) in figures.items() if ci}
    return {
        "variant_id": key,
        "variant": label,
        "rank_interval": rank,
        "tie_group": group,
        "tasks": 4,
        "phrasings": 24,
        "coverage": {"cells": 24, "shared_with_ground": 24},
        "ci": intervals,
        **values,
    }


FIGURES = [{"name": "avgp", "label": "AvgP", "unit": "pct"}, {"name": "std", "label": "Std", "unit": "pp"}]


def _answer(results, estimated=(), **extra) -> dict:
    return {
        "benchmark": "demo",
        "phrasing_set": "all",
        "figures": FIGURES,
        "ground": {"tasks": 4, "phrasings": 24},
        "results": list(results),
        "estimated": list(estimated),
        **extra,
    }


def test_the_diff_judges_a_figure_by_the_older_interval():
    old = _answer([_row(1, "a", [1, 1], 1, avgp=(0.5, [0.45, 0.55]), std=(0.1, [0.08, 0.12]))])
    cases = [
        (0.53, [0.48, 0.58], snapshot_diff.WITHIN, False),
        (0.57, [0.52, 0.62], snapshot_diff.BEYOND, False),
        (0.60, [0.56, 0.64], snapshot_diff.BEYOND, True),
        (0.40, [0.30, 0.44], snapshot_diff.BEYOND, True),
        (0.55, [0.50, 0.60], snapshot_diff.WITHIN, False),  # on the bound is within
    ]
    for value, ci, status, disjoint in cases:
        new = _answer([_row(1, "a", [1, 1], 1, avgp=(value, ci), std=(0.1, [0.08, 0.12]))])
        (change,) = snapshot_diff.diff(old, new).changed
        (figure,) = change.figures  # Std did not move, so it is not listed
        assert (figure.name, figure.status, figure.disjoint) == ("avgp", status, disjoint), value
        assert figure.flagged == (status != snapshot_diff.WITHIN)


def test_the_diff_flags_figures_that_appear_vanish_or_have_no_interval():
    old = _answer([_row(1, "a", avgp=(0.5, None), std=(None, None))])
    new = _answer([_row(1, "a", avgp=(0.51, [0.4, 0.6]), std=(0.1, [0.05, 0.15]))])
    (change,) = snapshot_diff.diff(old, new).changed
    assert {f.name: f.status for f in change.figures} == {
        "avgp": snapshot_diff.NO_INTERVAL,
        "std": snapshot_diff.DEFINED,
    }
    (back,) = snapshot_diff.diff(new, old).changed
    assert {f.name: f.status for f in back.figures}["std"] == snapshot_diff.UNDEFINED
    assert all(f.flagged for f in change.figures)


def test_the_diff_lists_rows_added_removed_and_moved_between_sections():
    a, b, c = _row(1, "a", [1, 1], 1), _row(2, "b", [2, 2], 2), _row(3, "c", [3, 3], 3)
    old = _answer([a, b, c])
    new = _answer([a, _row(4, "d", [2, 2], 2)], estimated=[_row(2, "b")])
    changes = snapshot_diff.diff(old, new)
    assert [r.label for r in changes.added] == ["d"] and [r.label for r in changes.removed] == ["c"]
    (moved,) = changes.changed
    assert (
        moved.label == "b"
        and moved.section_changed
        and (moved.old.section, moved.new.section)
        == (
            "results",
            "estimated",
        )
    )
    assert [r.label for r in changes.unchanged] == ["a"]


def test_a_renumbered_tie_group_is_no_change_but_new_tie_mates_are():
    old = _answer([_row(1, "a", [1, 2], 1), _row(2, "b", [1, 2], 1), _row(3, "c", [3, 3], 2)])
    # A new row above them all: a and b are still tied with each other, now in group 2; c is unchanged but
    # for its number and rank.
    new = _answer(
        [_row(9, "top", [1, 1], 1), _row(1, "a", [2, 3], 2), _row(2, "b", [2, 3], 2), _row(3, "c", [4, 4], 3)]
    )
    changes = snapshot_diff.diff(old, new)
    by_label = {r.label: r for r in changes.changed}
    assert not by_label["a"].ties_changed and by_label["a"].rank_changed
    assert by_label["a"].tied_with == (("b",), ("b",))
    # Now b separates from a: both have new tie mates.
    split = _answer([_row(1, "a", [1, 1], 1), _row(2, "b", [2, 3], 2), _row(3, "c", [2, 3], 2)])
    changes = snapshot_diff.diff(old, split)
    by_label = {r.label: r for r in changes.changed}
    assert by_label["a"].ties_changed and by_label["a"].tied_with == (("b",), ())
    assert by_label["c"].tied_with == ((), ("b",))


def test_the_diff_of_an_answer_with_itself_is_empty_and_views_that_differ_are_said():
    answer = _answer([_row(1, "a", [1, 1], 1, avgp=(0.5, [0.4, 0.6]))])
    assert snapshot_diff.diff(answer, json.loads(json.dumps(answer))).empty
    other = answer | {"phrasing_set": "unobserved"}
    assert snapshot_diff.diff(answer, other).view == (("phrasing set", "all", "unobserved"),)
    grown = _answer([_row(1, "a", [1, 1], 1, avgp=(0.5, [0.4, 0.6])) | {"phrasings": 25}])
    (change,) = snapshot_diff.diff(answer, grown).changed
    assert change.basis == (("phrasings", 24, 25),) and not change.figures


# --- The command and admin ---------------------------------------------------------------------------------


def test_the_command_freezes_a_view(board, capsys):
    call_command("snapshot_leaderboard", "demo", "--sort", "q10", "--title", "From the shell")
    out = capsys.readouterr().out
    snapshot = LeaderboardSnapshot.objects.get()
    assert out.startswith(f"Frozen as snapshot {snapshot.public_id}: /snapshots/{snapshot.public_id}/")
    assert snapshot.sort == "q10" and snapshot.title == "From the shell" and snapshot.created_by is None
    call_command("snapshot_leaderboard", "demo", "--sort", "q10")
    assert capsys.readouterr().out.startswith(f"Unchanged since snapshot {snapshot.public_id}")
    with pytest.raises(CommandError, match="no benchmark"):
        call_command("snapshot_leaderboard", "nosuch")
    with pytest.raises(CommandError, match="sort must be one of"):
        call_command("snapshot_leaderboard", "demo", "--sort", "bogus")


def test_admin_shows_snapshots_read_only(client, admin_user, alice_client, board):
    made = _freeze(alice_client)
    snapshot = LeaderboardSnapshot.objects.get(public_id=made["id"])
    client.force_login(admin_user)
    admin_user.is_staff = True
    admin_user.save()
    assert client.get("/admin/evaluation/leaderboardsnapshot/").status_code == 200
    assert client.get(f"/admin/evaluation/leaderboardsnapshot/{snapshot.id}/change/").status_code == 200
    assert client.get("/admin/evaluation/leaderboardsnapshot/add/").status_code == 403
    assert client.post(f"/admin/evaluation/leaderboardsnapshot/{snapshot.id}/delete/").status_code == 403
    assert LeaderboardSnapshot.objects.filter(id=snapshot.id).exists()


def test_a_view_with_no_results_is_not_frozen(alice_client, db):
    load_demo(generated_per_task=0)
    response = alice_client.post("/api/snapshots/", {"benchmark": "demo"}, content_type="application/json")
    assert response.status_code == 400 and "no results yet" in response.json()["detail"]
    page = alice_client.post("/b/demo/leaderboard/freeze/", {})
    assert page.status_code == 400 and "nothing to freeze" in page.content.decode()
    assert not LeaderboardSnapshot.objects.exists()

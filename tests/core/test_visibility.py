"""A phrasing a user may not see is never shown to them, in any form: approved phrasings are public; pending,
sent back, rejected and retired ones are seen by their author and by curators only. To bob (another author)
and to anonymous users, alice's hidden phrasings have no text, id or existence on pages, in the API and its
filters, in exports, in the near-duplicate check and in the duplicate refusal. And reviews change a status
only the way the service allows, whichever door they come through (page, API, bulk, admin)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import AnonymousUser
from django.urls import reverse
from rest_framework.test import APIClient

from collection import services, similarity
from collection.models import Benchmark, Collection, Instance, Instruction, Task
from evaluation.models import (
    BenchmarkSummary,
    LanguageModel,
    ModelVariant,
    PhrasingResult,
    ScoringRun,
    SoftPrompt,
    TaskSummary,
)

pytestmark = pytest.mark.django_db

APPROVED_TEXT = "Is {number} even? Answer yes or no."
# Each hidden phrasing carries a word found nowhere else, so a page that shows it in any form is caught.
HIDDEN = {
    "pending": "Zebrafinch: is {number} an even number? yes or no.",
    "needs_edit": "Yakherd: is {number} divisible by two? yes or no.",
    "rejected": "Okapiland: {number} even?",
    "retired": "Lemurpark: tell me whether {number} is even.",
}
MARKERS = {status: text.split(":")[0] for status, text in HIDDEN.items()}
# The statuses the near-duplicate check compares a draft with (rejected and retired ones never are).
COMPARED = ("pending", "needs_edit")


@dataclass
class World:
    task: Task
    approved: Instruction
    hidden: dict[str, Instruction]
    retired_run: ScoringRun
    task_run: ScoringRun
    soft: SoftPrompt


@pytest.fixture
def world(alice, bob, carol) -> World:
    benchmark = Benchmark.objects.create(slug="b", name="Bench")
    task = Task.objects.create(
        benchmark=benchmark,
        slug="t",
        name="Parity",
        kind="binary",
        answer_format="option_text",
        input_fields=["number"],
        label_space=["yes", "no"],
        max_options=2,
    )
    for n in range(4):
        Instance.objects.create(
            task=task, source_id=str(n), inputs={"number": str(n)}, options=["yes", "no"], gold=n % 2
        )
    approved = services.instruction_create(
        task=task,
        template=APPROVED_TEXT,
        collection=Collection.objects.get(slug="crowd"),
        source="paper",
        status="approved",
    )
    hidden = {
        status: services.instruction_submit(task=task, template=text, author=alice)
        for status, text in HIDDEN.items()
    }
    for status, decision, reason in [
        ("needs_edit", "needs_edit", "Clearer."),
        ("rejected", "rejected", "Vague."),
        ("retired", "approved", ""),
        ("retired", "retired", ""),
    ]:
        services.instruction_review(
            instruction=hidden[status], reviewer=carol, status=decision, reason=reason
        )
    for instruction in hidden.values():
        instruction.refresh_from_db()
    assert {s: i.status for s, i in hidden.items()} == {s: s for s in HIDDEN}

    model = LanguageModel.objects.create(name="m", source="/nowhere", family="seq2seq", is_active=False)
    variant = ModelVariant.objects.create(model=model, kind="base")
    # Results of the approved phrasing and, as after a retirement or an import, of hidden ones.
    for instruction, accuracy in [(approved, 0.5), (hidden["retired"], 0.75), (hidden["pending"], 0.25)]:
        PhrasingResult.objects.create(
            variant=variant, revision=instruction.current_revision, task=task, accuracy=accuracy
        )
    figures = {
        "avgp": 0.5,
        "std": 0.0,
        "min": 0.5,
        "q10": 0.5,
        "q25": 0.5,
        "median": 0.5,
        "q75": 0.5,
        "maxp": 0.5,
        "spread": 0.0,
        "cps": 0.5,
        "phrasings": 1,
        "tasks": 1,
        "ci": {},
    }
    TaskSummary.objects.create(variant=variant, task=task, phrasing_set="all", figures=figures)
    BenchmarkSummary.objects.create(variant=variant, benchmark=benchmark, phrasing_set="all", figures=figures)
    # Run ids far from the phrasings' ids, so a page that shows "#<run id>" is never taken for one that shows
    # "#<phrasing id>".
    retired_revision = hidden["retired"].current_revision
    retired_run = ScoringRun.objects.create(
        id=990001,
        variant=variant,
        task=task,
        instruction=hidden["retired"],
        status="succeeded",
        trigger="approval",
    )
    retired_run.revisions.set([retired_revision])
    task_run = ScoringRun.objects.create(
        id=990002, variant=variant, task=task, status="succeeded", trigger="manual"
    )
    task_run.revisions.set([approved.current_revision, retired_revision])
    soft = SoftPrompt.objects.create(id=990003, model=model, trigger="manual", config={}, status="succeeded")
    soft.training_revisions.set([approved.current_revision])
    soft.heldout_revisions.set([retired_revision])
    return World(task, approved, hidden, retired_run, task_run, soft)


def _login(client, request, who: str):
    if who != "anonymous":
        client.force_login(request.getfixturevalue(who))
    return client


def _api(request, who: str) -> APIClient:
    api = APIClient()
    if who != "anonymous":
        api.force_authenticate(request.getfixturevalue(who))
    return api


def _user(request, who: str):
    return AnonymousUser() if who == "anonymous" else request.getfixturevalue(who)


def shows_id(text: str, instruction_id: int) -> bool:
    return re.search(rf"#{instruction_id}(?!\d)", text) is not None


def assert_hidden(text: str, world: World, statuses=tuple(HIDDEN)) -> None:
    for status in statuses:
        instruction = world.hidden[status]
        assert MARKERS[status] not in text, f"the {status} phrasing's text is shown"
        assert f"/phrasings/{instruction.id}/" not in text, f"a link to the {status} phrasing is shown"
        assert not shows_id(text, instruction.id), f"the {status} phrasing's id is shown"


OUTSIDERS = ["anonymous", "bob"]
INSIDERS = ["alice", "carol"]  # the author and a curator


# --- The near-duplicate check: the API endpoint and the authoring preview ---------------------------------


@pytest.mark.parametrize("who", ["bob", "alice", "carol"])
@pytest.mark.parametrize("status", COMPARED)
def test_the_check_endpoint_lists_only_phrasings_the_user_may_see(request, world, who, status):
    twin = world.hidden[status]
    response = _api(request, who).post(
        "/api/instructions/check/", {"task": world.task.id, "template": HIDDEN[status]}, format="json"
    )
    assert response.status_code == 200
    similar = response.json()["similar"]
    ids = {s["instruction"] for s in similar}
    assert world.approved.id in ids  # a public neighbour is listed to everyone
    if who == "bob":
        assert twin.id not in ids
        assert not any(s["exact"] for s in similar)
        assert_hidden(response.content.decode(), world)
    else:
        (exact,) = [s for s in similar if s["exact"]]
        assert (exact["instruction"], exact["status"], exact["template"]) == (twin.id, status, HIDDEN[status])


@pytest.mark.parametrize("who", ["bob", "carol"])
def test_the_preview_never_shows_another_authors_phrasing_under_review(client, request, world, who):
    _login(client, request, who)
    url = reverse("phrasing_preview", args=["b", "t"])
    # A draft close to the hidden phrasings but without their marker words.
    near = client.post(url, {"template": "Is {number} an even number? yes or no."}, HTTP_HX_REQUEST="true")
    assert near.status_code == 200
    page = near.content.decode()
    assert "Answer yes or no." in page  # the approved neighbour is listed to everyone
    for status in COMPARED:
        assert (MARKERS[status] in page) == (who == "carol"), status
    assert "Pending" in page if who == "carol" else "Pending" not in page
    # The very text of alice's pending phrasing: a duplicate to carol, nothing known to bob.
    exact = client.post(url, {"template": HIDDEN["pending"]}, HTTP_HX_REQUEST="true").content.decode()
    pending = world.hidden["pending"]
    if who == "carol":
        assert "Not submittable" in exact and f"phrasing #{pending.id}" in exact
    else:
        assert "Not submittable" not in exact and not shows_id(exact, pending.id) and "Pending" not in exact
        assert MARKERS["needs_edit"] not in exact


def test_the_similarity_service_draws_only_from_what_the_user_may_see(world, alice, bob, carol):
    def found(user) -> set[int]:
        found = similarity.similar_phrasings(task=world.task, template=HIDDEN["pending"], user=user)
        return {s.instruction.id for s in found}

    compared = {world.hidden[s].id for s in COMPARED}
    assert found(bob) == found(AnonymousUser()) == {world.approved.id}
    assert found(alice) == found(carol) == {world.approved.id, *compared}


# --- The exact-duplicate refusal -------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["pending", "needs_edit", "rejected"])
def test_the_duplicate_refusal_tells_another_author_only_that_one_is_under_review(world, bob, status):
    twin = world.hidden[status]
    shouted = "  " + HIDDEN[status].upper().replace("{NUMBER}", "{number}") + "\n"
    with pytest.raises(services.DuplicatePhrasing) as refused:
        services.instruction_submit(task=world.task, template=shouted, author=bob)
    message = refused.value.message
    assert "already under review" in message
    assert str(twin.id) not in message and MARKERS[status].lower() not in message.lower()
    assert status.replace("_", " ") not in message and "rejected" not in message and "pending" not in message
    assert not Instruction.objects.filter(author=bob).exists()


def test_the_duplicate_refusal_names_the_twin_to_those_who_see_it(world, alice, carol):
    twin = world.hidden["pending"]
    for user in (alice, carol):
        named = rf"already has this phrasing \(#{twin.id}, pending review\)"
        with pytest.raises(services.DuplicatePhrasing, match=named):
            services.instruction_submit(task=world.task, template=HIDDEN["pending"], author=user)
    # A retired phrasing is no obstacle: its text may be written again.
    services.instruction_submit(task=world.task, template=HIDDEN["retired"], author=carol)


def test_the_duplicate_refusal_through_the_api_and_the_page_says_the_same(client, request, world, bob):
    twin = world.hidden["pending"]
    response = _api(request, "bob").post(
        "/api/instructions/", {"task": world.task.id, "template": HIDDEN["pending"]}, format="json"
    )
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "already under review" in detail and str(twin.id) not in detail
    client.force_login(bob)
    page = client.post(reverse("phrasing_new", args=["b", "t"]), {"template": HIDDEN["pending"]})
    assert page.status_code == 400
    html = page.content.decode()
    assert "Not submitted:</strong> A phrasing like this is already under review" in html
    assert not shows_id(html, twin.id) and "Not submittable" not in html


# --- Pages ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(HIDDEN))
@pytest.mark.parametrize("who", OUTSIDERS + INSIDERS)
def test_a_hidden_phrasings_page_does_not_exist_for_outsiders(client, request, world, who, status):
    _login(client, request, who)
    response = client.get(reverse("phrasing_detail", args=[world.hidden[status].id]))
    if who in OUTSIDERS:
        assert response.status_code == 404
        assert_hidden(response.content.decode(), world)
    else:
        assert response.status_code == 200 and MARKERS[status] in response.content.decode()


@pytest.mark.parametrize("who", OUTSIDERS)
def test_editing_a_hidden_phrasing_is_not_found_rather_than_forbidden(client, request, world, who):
    _login(client, request, who)
    response = client.get(reverse("phrasing_edit", args=[world.hidden["pending"].id]))
    assert response.status_code == (404 if who == "bob" else 302)
    api = _api(request, who)
    url = f"/api/instructions/{world.hidden['pending'].id}/"
    patch = api.patch(url, {"template": "Even? {number}"}, format="json")
    assert patch.status_code == (404 if who == "bob" else 403)
    world.hidden["pending"].refresh_from_db()
    assert world.hidden["pending"].template == HIDDEN["pending"]


@pytest.mark.parametrize("who", OUTSIDERS + INSIDERS)
def test_browsing_pages_show_only_public_phrasings(client, request, world, who):
    _login(client, request, who)
    urls = [
        reverse("task_detail", args=["b", "t"]),
        reverse("benchmark_detail", args=["b"]),
        reverse("task_results", args=["b", "t"]),
        reverse("model_detail", args=["m"]),
        reverse("run_list"),
        reverse("run_detail", args=[world.task_run.id]),
        reverse("softprompt_detail", args=[world.soft.id]),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        if who in OUTSIDERS:
            assert_hidden(response.content.decode(), world)
    task_page = client.get(reverse("task_detail", args=["b", "t"])).content.decode()
    assert "Is {number} even? Answer yes or no." in task_page
    grid = client.get(reverse("task_results", args=["b", "t"])).content.decode()
    assert f"/phrasings/{world.approved.id}/" in grid  # the public phrasing's row
    run_page = client.get(reverse("run_detail", args=[world.task_run.id])).content.decode()
    assert "Answer yes or no." in run_page
    assert (MARKERS["retired"] in run_page) == (who in INSIDERS)
    soft_page = client.get(reverse("softprompt_detail", args=[world.soft.id])).content.decode()
    assert f"/phrasings/{world.approved.id}/" in soft_page  # trained on the public phrasing
    assert (f"/phrasings/{world.hidden['retired'].id}/" in soft_page) == (who in INSIDERS)


@pytest.mark.parametrize("who", OUTSIDERS + INSIDERS)
def test_a_run_made_for_a_hidden_phrasing_is_seen_only_by_those_who_see_it(client, request, world, who):
    _login(client, request, who)
    run = world.retired_run
    detail = client.get(reverse("run_detail", args=[run.id]))
    listed = client.get(reverse("run_list")).content.decode()
    api_ids = {r["id"] for r in _api(request, who).get("/api/runs/").json()["results"]}
    api_detail = _api(request, who).get(f"/api/runs/{run.id}/")
    if who in OUTSIDERS:
        assert detail.status_code == 404 and api_detail.status_code == 404
        assert f"/runs/{run.id}/" not in listed and run.id not in api_ids
    else:
        assert detail.status_code == 200 and MARKERS["retired"] in detail.content.decode()
        assert f"/runs/{run.id}/" in listed and run.id in api_ids and api_detail.status_code == 200
    assert world.task_run.id in api_ids  # a run of the whole task is public


def test_my_phrasings_shows_the_authors_own_and_nobody_elses(client, world, alice, bob):
    client.force_login(bob)
    page = client.get(reverse("my_phrasings")).content.decode()
    assert_hidden(page, world)
    client.force_login(alice)
    page = client.get(reverse("my_phrasings")).content.decode()
    for status in HIDDEN:
        assert MARKERS[status] in page, status


def test_the_curation_queue_is_for_curators_only(client, world, bob, carol):
    client.force_login(bob)
    assert client.get(reverse("curation_queue")).status_code == 403
    client.force_login(carol)
    assert MARKERS["pending"] in client.get(reverse("curation_queue")).content.decode()


# --- The API and its filters, and exports ----------------------------------------------------------------


@pytest.mark.parametrize("who", OUTSIDERS + INSIDERS)
def test_api_lists_and_filters_show_only_visible_phrasings_and_their_results(request, world, who):
    api = _api(request, who)
    hidden_ids = {i.id for i in world.hidden.values()}
    listed = api.get("/api/instructions/", {"task": world.task.id}).json()
    ids = {row["id"] for row in listed["results"]}
    assert world.approved.id in ids
    assert ids & hidden_ids == (set() if who in OUTSIDERS else hidden_ids)
    for status, instruction in world.hidden.items():
        by_status = api.get("/api/instructions/", {"status": status}).json()
        assert by_status["count"] == (0 if who in OUTSIDERS else 1), status
        detail = api.get(f"/api/instructions/{instruction.id}/")
        assert detail.status_code == (404 if who in OUTSIDERS else 200)
    if who in OUTSIDERS:
        assert_hidden(api.get("/api/instructions/").content.decode(), world)
    for status in ("retired", "pending"):
        results = api.get("/api/results/", {"instruction": world.hidden[status].id}).json()
        assert results["count"] == (0 if who in OUTSIDERS else 1), status
    every = {row["instruction"] for row in api.get("/api/results/").json()["results"]}
    assert world.approved.id in every
    scored = {world.hidden["retired"].id, world.hidden["pending"].id}
    assert every & hidden_ids == (set() if who in OUTSIDERS else scored)


@pytest.mark.parametrize("who", OUTSIDERS + INSIDERS)
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_exports_carry_no_hidden_phrasing(client, request, world, who, fmt):
    _login(client, request, who)
    for url in (reverse("leaderboard", args=["b"]), reverse("task_results", args=["b", "t"])):
        response = client.get(url, {"format": fmt})
        assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
        body = response.content.decode()
        assert "m" in body and "avgp" in body  # the model's figures are there
        assert_hidden(body, world)


# --- Reviews: only the transitions the service allows, through every door --------------------------------


@pytest.mark.parametrize(
    ("status", "decision", "reason", "message"),
    [
        ("rejected", "approved", "", "This phrasing is rejected; only a pending phrasing"),
        ("retired", "rejected", "No.", "This phrasing is retired; only a pending phrasing"),
        ("rejected", "retired", "", "Only an approved phrasing can be retired; this one is rejected."),
        ("pending", "retired", "", "Only an approved phrasing can be retired; this one is pending."),
    ],
)
def test_the_service_refuses_decisions_the_status_does_not_allow(
    world, carol, status, decision, reason, message
):
    instruction = world.hidden[status]
    with pytest.raises(services.ApplicationError, match=message):
        services.instruction_review(instruction=instruction, reviewer=carol, status=decision, reason=reason)
    instruction.refresh_from_db()
    assert instruction.status == status


def test_an_approved_phrasing_can_only_be_retired(world, carol):
    for decision, reason in [("rejected", "Vague."), ("needs_edit", "Shorter."), ("approved", "")]:
        only_retire = "This phrasing is approved: .* can only be retired"
        with pytest.raises(services.ApplicationError, match=only_retire):
            services.instruction_review(
                instruction=world.approved, reviewer=carol, status=decision, reason=reason
            )
    world.approved.refresh_from_db()
    assert world.approved.status == "approved"
    services.instruction_review(instruction=world.approved, reviewer=carol, status="retired")
    world.approved.refresh_from_db()
    assert world.approved.status == "retired"


def test_a_phrasing_sent_back_waits_for_its_authors_edit_before_the_next_decision(world, carol):
    # One decision per text (issue 27): a curator sent this text back, so no other decision is taken on it.
    instruction = world.hidden["needs_edit"]
    for decision, reason in [("rejected", "Still vague."), ("approved", ""), ("needs_edit", "Again.")]:
        with pytest.raises(services.ApplicationError, match="waits for its author's edit"):
            services.instruction_review(
                instruction=instruction, reviewer=carol, status=decision, reason=reason
            )
    instruction.refresh_from_db()
    assert instruction.status == "needs_edit"


def test_the_api_refuses_decisions_the_status_does_not_allow(request, world):
    api = _api(request, "carol")
    rejected = world.hidden["rejected"]
    response = api.post(
        f"/api/instructions/{rejected.id}/review/",
        {"decision": "approved", "revision": rejected.current_revision_id},
        format="json",
    )
    assert response.status_code == 400 and "This phrasing is rejected" in response.json()["detail"]
    url = f"/api/instructions/{world.approved.id}/review/"
    seen = world.approved.current_revision_id
    response = api.post(url, {"decision": "rejected", "reason": "Vague.", "revision": seen}, format="json")
    assert response.status_code == 400 and "can only be retired" in response.json()["detail"]
    assert Instruction.objects.get(id=rejected.id).status == "rejected"
    assert Instruction.objects.get(id=world.approved.id).status == "approved"
    response = api.post(url, {"decision": "retired", "revision": seen}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "retired"


def test_the_queue_refuses_decisions_the_status_does_not_allow(client, world, carol):
    client.force_login(carol)
    response = client.post(
        reverse("curation_review", args=[world.approved.id]),
        {"decision": "rejected", "reason": "Vague.", "revision": world.approved.current_revision_id},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400 and "can only be retired" in response.content.decode()
    rejected = world.hidden["rejected"]
    response = client.post(
        reverse("curation_bulk"),
        {
            "decision": "approved",
            "ids": [f"{p.id}:{p.current_revision_id}" for p in (rejected, world.hidden["pending"])],
        },
        follow=True,
    )
    page = response.content.decode()
    assert f"Phrasing #{rejected.id}: This phrasing is rejected" in page
    assert "1 phrasing(s): approved." in page
    assert Instruction.objects.get(id=rejected.id).status == "rejected"
    assert Instruction.objects.get(id=world.hidden["pending"].id).status == "approved"
    assert Instruction.objects.get(id=world.approved.id).status == "approved"


def test_bulk_review_refuses_each_phrasing_the_status_does_not_allow(world, carol):
    chosen = [world.hidden["rejected"], world.approved, world.hidden["needs_edit"]]
    outcomes = services.instructions_review_bulk(instructions=chosen, reviewer=carol, status="approved")
    assert "This phrasing is rejected" in outcomes[0].error
    assert "can only be retired" in outcomes[1].error
    assert "waits for its author's edit" in outcomes[2].error
    statuses = {i.id: i.status for i in Instruction.objects.filter(id__in=[i.id for i in chosen])}
    assert [statuses[i.id] for i in chosen] == ["rejected", "approved", "needs_edit"]


@pytest.fixture
def staff_carol(carol):
    carol.is_staff = True
    carol.save()
    return carol


def test_admin_actions_refuse_decisions_the_status_does_not_allow(client, world, staff_carol):
    client.force_login(staff_carol)
    url = reverse("admin:collection_instruction_changelist")
    rejected = world.hidden["rejected"]
    page = client.post(url, {"action": "approve", "_selected_action": [rejected.id]}, follow=True)
    page = page.content.decode()
    assert f"Phrasing #{rejected.id}: This phrasing is rejected" in page
    page = client.post(
        url,
        {"action": "reject", "_selected_action": [world.approved.id], "confirm": "yes", "reason": "Vague."},
        follow=True,
    ).content.decode()
    assert f"Phrasing #{world.approved.id}: This phrasing is approved" in page
    assert Instruction.objects.get(id=rejected.id).status == "rejected"
    assert Instruction.objects.get(id=world.approved.id).status == "approved"
    shown = {f"read_revision_{world.approved.id}": world.approved.current_revision_id}
    page = client.post(
        url, {"action": "retire", "_selected_action": [world.approved.id], **shown}, follow=True
    )
    page = page.content.decode()
    assert "1 phrasing(s) retired." in page
    assert Instruction.objects.get(id=world.approved.id).status == "retired"


def _change_form_data(client, url: str) -> dict:
    """What the admin change form would post back unchanged, read from the page's own forms."""
    context = client.get(url).context
    data = {}
    form = context["adminform"].form
    for name in form.fields:
        value = form[name].value()
        data[name] = "" if value is None else value
    for inline in context["inline_admin_formsets"]:
        formset = inline.formset
        for name, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{name}"] = value
        for index, inline_form in enumerate(formset.forms):
            for name in inline_form.fields:
                value = inline_form[name].value()
                data[f"{formset.prefix}-{index}-{name}"] = "" if value is None else value
    return data


def test_a_curator_cannot_credit_their_phrasing_to_someone_else_in_admin(client, world, alice, staff_carol):
    own = services.instruction_submit(
        task=world.task, template="Carol asks: {number} even?", author=staff_carol
    )
    client.force_login(staff_carol)
    url = reverse("admin:collection_instruction_change", args=[own.id])
    data = _change_form_data(client, url)
    data.update(author=alice.id, source="elsewhere", task=world.task.id, external_id="carol-1")
    response = client.post(url, data)
    assert response.status_code == 302  # the form was accepted...
    own.refresh_from_db()
    assert own.external_id == "carol-1"  # ...and saved what may change,
    assert (own.author, own.source) == (staff_carol, "")  # but not who wrote it or where from.
    changelist = reverse("admin:collection_instruction_changelist")
    page = client.post(changelist, {"action": "approve", "_selected_action": [own.id]}, follow=True)
    page = page.content.decode()
    assert "You cannot review your own phrasing" in page
    own.refresh_from_db()
    assert own.status == "pending"


def test_admin_adds_no_phrasings_by_hand(client, world, admin_user):
    admin_user.is_staff = True
    admin_user.save()
    client.force_login(admin_user)
    assert client.get(reverse("admin:collection_instruction_add")).status_code == 403

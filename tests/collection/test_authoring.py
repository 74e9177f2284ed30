"""Authoring and curation services and pages: submit, preview, duplicates, limits, review decisions."""

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse

from collection import services, similarity
from collection.models import Instruction, PhrasingEmbedding, Task
from core.errors import ApplicationError
from evaluation.models import ScoringRun

pytestmark = pytest.mark.django_db

NEW = "Decide whether {number} is divisible by two. Reply yes or no."


@pytest.fixture
def parity(db):
    call_command("load_demo")
    return Task.objects.get(benchmark__slug="demo", slug="parity")


def test_an_author_submits_a_pending_crowd_phrasing_and_its_embedding_is_stored(
    parity, alice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        instruction = services.instruction_submit(task=parity, template=NEW, author=alice)
    assert instruction.status == "pending" and instruction.collection.slug == "crowd"
    assert instruction.author == alice
    # The embedding job ran (eagerly here) once the submission committed.
    assert PhrasingEmbedding.objects.filter(revision=instruction.current_revision).count() == 1


def test_an_exact_duplicate_ignoring_case_and_spaces_is_refused(parity, alice):
    existing = parity.instructions.filter(status="approved").first().template
    shouted = "  " + existing.upper().replace(" ", "   ") + "\n"
    with pytest.raises(services.DuplicatePhrasing, match="already has this phrasing"):
        services.instruction_submit(
            task=parity, template=shouted.replace("{NUMBER}", "{number}"), author=alice
        )
    assert not Instruction.objects.filter(author=alice).exists()


def test_an_invalid_template_is_refused_with_what_to_fix(parity, alice):
    with pytest.raises(services.InvalidTemplate) as caught:
        services.instruction_submit(task=parity, template="Is {numbr} even?", author=alice)
    assert "Did you mean {number}?" in str(caught.value)
    assert not Instruction.objects.filter(author=alice).exists()


@override_settings(SUBMISSIONS_PER_HOUR=2)
def test_submissions_over_the_hourly_limit_are_refused(parity, alice, bob):
    services.instruction_submit(task=parity, template="One: is {number} even?", author=alice)
    services.instruction_submit(task=parity, template="Two: is {number} even?", author=alice)
    with pytest.raises(services.RateLimited, match="limit is 2 per hour"):
        services.instruction_submit(task=parity, template="Three: is {number} even?", author=alice)
    # The limit is per user.
    services.instruction_submit(task=parity, template="Three: is {number} even?", author=bob)


def test_anonymous_users_cannot_submit(parity):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(ApplicationError, match="Sign up or log in"):
        services.instruction_submit(task=parity, template=NEW, author=AnonymousUser())


def test_near_duplicates_are_flagged_with_their_similarity(parity, alice):
    close = "Is {number} even? Answer yes or no."
    far = "Consider the integer {number}. Is it a multiple of 2? Respond with yes or no, nothing else."
    found = similarity.similar_phrasings(task=parity, template=close, user=alice)
    assert found[0].near and not found[0].exact
    assert found[0].instruction.template == "Is {number} even? yes or no."
    assert found[0].similarity >= 0.9
    assert found == sorted(found, key=lambda s: -s.similarity)
    assert not any(s.near for s in similarity.similar_phrasings(task=parity, template=far, user=alice))


def test_embeddings_are_computed_once_per_revision(parity, carol, django_assert_max_num_queries):
    similarity.similar_phrasings(task=parity, template=NEW, user=carol)
    stored = PhrasingEmbedding.objects.count()
    assert stored == parity.instructions.count()
    similarity.similar_phrasings(task=parity, template=NEW + " Please.", user=carol)
    assert PhrasingEmbedding.objects.count() == stored


def test_nobody_approves_their_own_phrasing(parity, carol):
    own = services.instruction_submit(task=parity, template=NEW, author=carol)
    with pytest.raises(ApplicationError, match="cannot review your own"):
        services.instruction_review(instruction=own, reviewer=carol, status="approved")
    own.refresh_from_db()
    assert own.status == "pending"


def test_an_admin_who_rewrote_another_s_phrasing_does_not_review_that_text(
    client, parity, alice, carol, admin_user
):
    """Admins may fix any pending phrasing; the text they wrote is then theirs, and someone else decides."""
    instruction = services.instruction_submit(task=parity, template=NEW, author=alice)
    services.instruction_edit(instruction=instruction, template=NEW + " Answer in lower case.", by=admin_user)
    with pytest.raises(ApplicationError, match="You wrote this phrasing's current text"):
        services.instruction_review(instruction=instruction, reviewer=admin_user, status="approved")
    instruction.refresh_from_db()
    assert instruction.status == "pending"
    client.force_login(admin_user)
    page = client.get(reverse("curation_queue")).content.decode()
    assert "You wrote this phrasing's current text: another curator reviews it." in page
    assert "1 of them your own" in page
    # Put back to the author's own text (the same revision, written by her), the admin may decide on it.
    services.instruction_edit(instruction=instruction, template=NEW, by=admin_user)
    services.instruction_review(instruction=instruction, reviewer=admin_user, status="approved")
    # Another curator decides on an admin's text as on any other.
    other = services.instruction_submit(task=parity, template=NEW + " Be brief.", author=alice)
    services.instruction_edit(instruction=other, template=NEW + " Be very brief.", by=admin_user)
    services.instruction_review(instruction=other, reviewer=carol, status="approved")


def test_asking_for_an_edit_needs_a_reason_and_the_edit_returns_it_to_the_queue(parity, alice, carol):
    instruction = services.instruction_submit(task=parity, template=NEW, author=alice)
    with pytest.raises(ApplicationError, match="Say what to change"):
        services.instruction_review(instruction=instruction, reviewer=carol, status="needs_edit")
    services.instruction_review(
        instruction=instruction, reviewer=carol, status="needs_edit", reason="Say 'even'."
    )
    instruction.refresh_from_db()
    assert instruction.status == "needs_edit"
    services.instruction_edit(
        instruction=instruction, template="Is {number} an even number? yes/no", by=alice
    )
    instruction.refresh_from_db()
    assert instruction.status == "pending"
    assert instruction.current_revision.number == 2


def test_only_the_author_edits_and_only_before_review(parity, alice, bob, carol):
    instruction = services.instruction_submit(task=parity, template=NEW, author=alice)
    with pytest.raises(ApplicationError, match="only edit your own"):
        services.instruction_edit(instruction=instruction, template=NEW + "!", by=bob)
    services.instruction_review(instruction=instruction, reviewer=carol, status="approved")
    instruction.refresh_from_db()
    with pytest.raises(ApplicationError, match="only pending phrasings can be edited"):
        services.instruction_edit(instruction=instruction, template=NEW + "!", by=alice)


def test_bulk_review_decides_each_and_reports_refusals(parity, alice, carol):
    from evaluation.runs.registry import language_model_register  # noqa: F401  (registry exists; no model needed)

    theirs = [
        services.instruction_submit(task=parity, template=f"{w} is {{number}} even?", author=alice)
        for w in ("So,", "Now,")
    ]
    own = services.instruction_submit(task=parity, template="Tell me: is {number} even?", author=carol)
    outcomes = services.instructions_review_bulk(
        instructions=[*theirs, own], reviewer=carol, status="approved"
    )
    assert [o.error for o in outcomes[:2]] == ["", ""]
    assert "your own" in outcomes[2].error
    assert (
        sorted(Instruction.objects.filter(id__in=[i.id for i in theirs]).values_list("status", flat=True))
        == ["approved"] * 2
    )


def test_the_preview_validates_and_renders_samples_as_the_model_reads_them(client, parity, alice):
    client.force_login(alice)
    url = reverse("phrasing_preview", args=["demo", "parity"])
    page = client.post(url, {"template": "Is {numbr} even?"}).content.decode()
    assert "Did you mean {number}?" in page
    # The verdict goes to the text box, out of band, not only to the preview far below it on a phone.
    assert '<div id="template-check" aria-live="polite" hx-swap-oob="true">' in page
    page = client.post(url, {"template": NEW}).content.decode()
    assert "The phrasing is valid" in page
    first = parity.instances.filter(split="eval").order_by("id").first()
    assert f"Decide whether {first.inputs['number']} is divisible by two." in page
    page = client.post(url, {"template": "Is {number} even? Yes or no."}).content.decode()
    # One state per check: a duplicate is refused, and never also called valid.
    assert "Not submittable" in page and "The phrasing is valid" not in page
    assert "similarity 100%" in page


def test_the_preview_shows_neighbours_similarity_and_their_accuracy(client, parity, alice):
    from evaluation.models import LanguageModel, ModelVariant, PhrasingResult

    neighbour = parity.instructions.get(current_revision__template="Is {number} even? yes or no.")
    model = LanguageModel.objects.create(name="m", source="published", family="seq2seq", is_active=False)
    variant = ModelVariant.objects.create(model=model, kind="imported")
    PhrasingResult.objects.create(
        variant=variant, revision=neighbour.current_revision, task=parity, accuracy=0.62, source="imported"
    )
    client.force_login(alice)
    page = client.post(
        reverse("phrasing_preview", args=["demo", "parity"]), {"template": "Is {number} even? Say yes or no."}
    ).content.decode()
    assert "similarity " in page and "scores 62.0% on average over 1 model" in page


def test_the_preview_applies_a_models_prompt_format(client, parity, alice):
    from evaluation.models import LanguageModel

    LanguageModel.objects.create(
        name="alpaca-like", source="/nowhere", family="causal", prompt_format="alpaca"
    )
    client.force_login(alice)
    page = client.post(
        reverse("phrasing_preview", args=["demo", "parity"]),
        {"template": NEW, "preview_model": "alpaca-like"},
    ).content.decode()
    assert "### Instruction:" in page and "### Response:" in page


def test_a_phrasing_on_a_letter_task_may_ask_for_the_option_text(client, parity, alice):
    larger = Task.objects.get(benchmark__slug="demo", slug="larger-number")
    first = larger.instances.filter(split="eval").order_by("id").first()
    client.force_login(alice)
    template = "Which of these is larger? {options:bullets} Say the number itself."
    url = reverse("phrasing_preview", args=["demo", "larger-number"])
    letters = client.post(url, {"template": template}).content.decode()
    texts = client.post(url, {"template": template, "answers": "texts"}).content.decode()
    # The preview lists what is scored: the letters by default, the options' own texts when asked.
    assert (
        "The model answers with"
        in client.get(reverse("phrasing_new", args=["demo", "larger-number"])).content.decode()
    )
    assert ">A<" in letters.replace(" ", "") and f">{first.options[0]}<" not in letters.replace(" ", "")
    assert f">{first.options[0]}<" in texts.replace(" ", "")
    response = client.post(
        reverse("phrasing_new", args=["demo", "larger-number"]), {"template": template, "answers": "texts"}
    )
    assert response.status_code == 302
    revision = Instruction.objects.get(author=alice).current_revision
    assert revision.answers == "texts"
    # A value that is not a choice is refused with the form's message, nothing saved.
    response = client.post(
        reverse("phrasing_new", args=["demo", "larger-number"]), {"template": template + " ", "answers": "x"}
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert Instruction.objects.filter(author=alice).count() == 1


def test_submitting_through_the_page_keeps_the_text_when_refused(client, parity, alice):
    client.force_login(alice)
    url = reverse("phrasing_new", args=["demo", "parity"])
    response = client.post(url, {"template": "Is {number} even? yes or no."})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Not submitted" in page and "already has this phrasing" in page
    assert "Is {number} even? yes or no.</textarea>" in page
    response = client.post(url, {"template": NEW})
    assert response.status_code == 302 and response["Location"] == reverse("my_phrasings")


def test_the_curator_approves_from_the_queue_and_scoring_is_queued(client, parity, alice, carol):
    from evaluation.models import LanguageModel

    LanguageModel.objects.create(name="m", source="/nowhere", family="seq2seq", is_active=True)
    instruction = services.instruction_submit(task=parity, template=NEW, author=alice)
    client.force_login(carol)
    page = client.get(reverse("curation_queue")).content.decode()
    assert NEW in page and "Nearest approved phrasings" in page
    response = client.post(
        reverse("curation_review", args=[instruction.id]),
        {"decision": "approved", "revision": instruction.current_revision_id},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and "approved" in response.content.decode()
    assert ScoringRun.objects.filter(instruction=instruction).count() == 1
    # The heading's pending count follows the decision (out of band), and the card links the run it started.
    html = response.content.decode()
    assert '<span id="pending-count"' in html and 'hx-swap-oob="true">0 pending</span>' in html
    run = ScoringRun.objects.get(instruction=instruction)
    assert f'href="{reverse("run_detail", args=[run.id])}"' in html


def test_rejecting_without_a_reason_is_refused_in_the_queue(client, parity, alice, carol):
    instruction = services.instruction_submit(task=parity, template=NEW, author=alice)
    client.force_login(carol)
    response = client.post(
        reverse("curation_review", args=[instruction.id]),
        {"decision": "rejected", "reason": " ", "revision": instruction.current_revision_id},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert "Say why the phrasing is rejected" in response.content.decode()
    instruction.refresh_from_db()
    assert instruction.status == "pending"
    # With a reason that ends a sentence, the decided card ends it once.
    response = client.post(
        reverse("curation_review", args=[instruction.id]),
        {"decision": "rejected", "reason": "Too vague.", "revision": instruction.current_revision_id},
        HTTP_HX_REQUEST="true",
    )
    assert "rejected</strong>: Too vague.\n" in response.content.decode()


def test_my_phrasings_shows_status_reason_and_impact(client, parity, alice, carol):
    from evaluation.models import LanguageModel, ModelVariant, PhrasingResult

    instruction = services.instruction_submit(task=parity, template=NEW, author=alice)
    services.instruction_review(instruction=instruction, reviewer=carol, status="approved")
    model = LanguageModel.objects.create(name="m", source="/nowhere", family="seq2seq", is_active=False)
    variant = ModelVariant.objects.create(model=model, kind="base")
    accuracies = {
        i.current_revision_id: a
        for i, a in zip(
            parity.instructions.filter(status="approved").exclude(id=instruction.id), [0.6, 0.7, 0.8]
        )
    }
    accuracies[instruction.current_revision_id] = 0.95
    for revision_id, accuracy in accuracies.items():
        PhrasingResult.objects.create(
            variant=variant, revision_id=revision_id, task=parity, accuracy=accuracy
        )
    client.force_login(alice)
    page = client.get(reverse("my_phrasings")).content.decode()
    assert "Approved" in page and "95.0%" in page
    assert "1 of 4" in page
    assert "widened by 15.0 pp" in page  # spread 0.20 without it, 0.35 with it


@override_settings(SUBMISSIONS_PER_HOUR=1)
def test_the_page_explains_the_rate_limit_and_keeps_the_draft(client, parity, alice):
    client.force_login(alice)
    url = reverse("phrasing_new", args=["demo", "parity"])
    assert client.post(url, {"template": NEW}).status_code == 302
    response = client.post(url, {"template": "Say if {number} is even."})
    assert response.status_code == 429 and 3590 <= int(response["Retry-After"]) <= 3600
    page = response.content.decode()
    assert "the limit is 1 per hour" in page and "Say if {number} is even.</textarea>" in page


def test_a_curator_cannot_approve_their_own_phrasing_from_the_queue(client, parity, carol):
    own = services.instruction_submit(task=parity, template=NEW, author=carol)
    client.force_login(carol)
    page = client.get(reverse("curation_queue")).content.decode()
    assert "This is your own phrasing: another curator reviews it." in page
    assert "of them your own (another curator reviews it)" in page
    response = client.post(
        reverse("curation_review", args=[own.id]),
        {"decision": "approved", "revision": own.current_revision_id},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 400
    assert "You cannot review your own phrasing" in response.content.decode()
    own.refresh_from_db()
    assert own.status == "pending"


def test_an_answer_word_left_empty_beside_a_filled_one_is_its_labels_own(client, parity, alice):
    """Its placeholder shows the label's own word: left empty, that word is used (it was refused, with a
    message about lists under the Phrasing field)."""
    client.force_login(alice)
    _, second = parity.label_space
    response = client.post(
        reverse("phrasing_new", args=["demo", "parity"]), {"template": NEW, "label_0": "oui", "label_1": " "}
    )
    assert response.status_code == 302
    assert Instruction.objects.get(author=alice).current_revision.labels == ["oui", second]


def test_admin_reject_action_asks_for_a_reason_then_rejects(client, parity, alice, admin_user):
    admin_user.is_staff = True
    admin_user.save()
    instruction = services.instruction_submit(task=parity, template=NEW, author=alice)
    client.force_login(admin_user)
    url = reverse("admin:collection_instruction_changelist")
    page = client.post(url, {"action": "reject", "_selected_action": [instruction.id]})
    assert page.status_code == 200 and "Give a reason" in page.content.decode()
    # The reason page carries the revision whose text it showed.
    shown = f'name="read_revision_{instruction.id}" value="{instruction.current_revision_id}"'
    assert shown in page.content.decode()
    client.post(
        url,
        {
            "action": "reject",
            "_selected_action": [instruction.id],
            f"read_revision_{instruction.id}": instruction.current_revision_id,
            "confirm": "yes",
            "reason": "Too vague.",
        },
    )
    instruction.refresh_from_db()
    assert instruction.status == "rejected" and instruction.review_reason == "Too vague."


def test_a_text_stored_with_direction_controls_before_they_were_refused_is_not_approved(
    client, parity, alice, carol
):
    from collection.models import InstructionRevision

    instruction = services.instruction_submit(task=parity, template=NEW, author=alice)
    InstructionRevision.objects.filter(id=instruction.current_revision_id).update(template="\u202e" + NEW)
    with pytest.raises(ApplicationError, match=r"invisible text-direction controls \(U\+202E\)"):
        services.instruction_review(instruction=instruction, reviewer=carol, status="approved")
    client.force_login(carol)
    page = client.get(reverse("curation_queue")).content.decode()
    assert "The phrasing contains invisible text-direction controls (U+202E)" in page  # shown in the queue
    services.instruction_review(
        instruction=instruction, reviewer=carol, status="rejected", reason="Hidden text."
    )

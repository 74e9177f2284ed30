import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction

from collection import services
from collection.models import Collection, Instruction, InstructionRevision, Task, phrasing_key
from core.errors import ApplicationError

pytestmark = pytest.mark.django_db


@pytest.fixture
def parity(db):
    call_command("load_demo")
    return Task.objects.get(slug="parity")


@pytest.fixture
def crowd(db):
    return Collection.objects.get(slug="crowd")


def submit(task, author, text="Is {number} even? yes or no"):
    return services.instruction_create(
        task=task, template=text, collection=Collection.objects.get(slug="crowd"), author=author
    )


def test_a_revision_is_identified_by_its_content_and_never_changes(parity, alice):
    phrasing = submit(parity, alice)
    first = phrasing.current_revision
    assert len(first.content_hash) == 64
    first.template = "something else"
    with pytest.raises(ValueError, match="immutable"):
        first.save()


def test_editing_back_to_an_earlier_text_reuses_its_revision(parity, alice):
    phrasing = submit(parity, alice)
    first = phrasing.current_revision
    second = services.instruction_revise(instruction=phrasing, template="Even? {number}", by=alice)
    assert second.number == 2
    again = services.instruction_revise(
        instruction=phrasing, template="Is {number} even? yes or no", by=alice
    )
    assert again == first
    assert InstructionRevision.objects.filter(instruction=phrasing).count() == 2


def test_the_database_refuses_a_rejection_without_a_reason(parity, alice):
    phrasing = submit(parity, alice)
    with pytest.raises(IntegrityError), transaction.atomic():
        Instruction.objects.filter(pk=phrasing.pk).update(status="rejected", review_reason="")


def test_the_database_refuses_a_phrasing_with_neither_author_nor_source(parity, crowd):
    with pytest.raises(IntegrityError), transaction.atomic():
        Instruction.objects.create(task=parity, collection=crowd, stable_key="k")


def test_the_database_refuses_an_unknown_status(parity, alice):
    phrasing = submit(parity, alice)
    with pytest.raises(IntegrityError), transaction.atomic():
        Instruction.objects.filter(pk=phrasing.pk).update(status="maybe")


def test_the_database_refuses_a_second_phrasing_with_the_same_external_id(parity, crowd):
    services.instruction_create(
        task=parity, template="{number}?", collection=crowd, source="s", external_id="1"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Instruction.objects.create(task=parity, collection=crowd, source="s", external_id="1", stable_key="k")


def test_the_database_refuses_a_phrasing_without_its_stable_key(parity, crowd):
    with pytest.raises(IntegrityError), transaction.atomic():
        Instruction.objects.create(task=parity, collection=crowd, source="s")


def test_a_phrasings_stable_key_is_its_benchmark_task_and_first_text_whatever_its_id(parity, alice):
    phrasing = submit(parity, alice)
    key = phrasing_key(
        benchmark_slug=parity.benchmark.slug,
        task_slug=parity.slug,
        template=phrasing.current_revision.template,
    )
    assert phrasing.stable_key == key
    services.instruction_edit(instruction=phrasing, by=alice, template="Is {number} odd? Say so.")
    phrasing.refresh_from_db()
    assert phrasing.stable_key == key  # fixed at creation: an edit keeps the phrasing's side of the split


def test_it_rejects_self_approval(parity, carol):
    phrasing = submit(parity, carol)
    with pytest.raises(ApplicationError, match="cannot review your own phrasing"):
        services.instruction_review(instruction=phrasing, reviewer=carol, status="approved")


def test_a_curator_approves_and_rejects_with_a_reason(parity, alice, carol):
    phrasing = submit(parity, alice)
    with pytest.raises(ApplicationError, match="Say why"):
        services.instruction_review(instruction=phrasing, reviewer=carol, status="rejected")
    services.instruction_review(instruction=phrasing, reviewer=carol, status="rejected", reason="Too vague")
    phrasing.refresh_from_db()
    assert (phrasing.status, phrasing.reviewer, phrasing.review_reason) == ("rejected", carol, "Too vague")


def test_an_author_cannot_review(parity, alice, bob):
    phrasing = submit(parity, alice)
    with pytest.raises(ApplicationError, match="Only curators"):
        services.instruction_review(instruction=phrasing, reviewer=bob, status="approved")


def test_label_words_must_match_the_task_labels(parity, alice):
    with pytest.raises(services.InvalidTemplate) as failure:
        services.instruction_create(
            task=parity,
            template="{number}",
            collection=Collection.objects.get(slug="crowd"),
            author=alice,
            labels=["Y", "N", "?"],
        )
    assert "one label word per task label: 2 (yes, no), not 3" in str(failure.value)

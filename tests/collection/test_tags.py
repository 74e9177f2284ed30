"""Tags on phrasings: the vocabulary, who may tag, the form, the API and the phrasing page."""

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.urls import reverse

from collection import services
from collection.demo import GENERATOR_SOURCE, demo_tags
from collection.models import Instruction, PhrasingTag, Task
from core.errors import ApplicationError

pytestmark = pytest.mark.django_db


@pytest.fixture
def parity(db):
    call_command("load_demo")
    return Task.objects.get(benchmark__slug="demo", slug="parity")


def slugs(instruction) -> set[str]:
    return set(Instruction.objects.get(pk=instruction.pk).tags.values_list("slug", flat=True))


def test_the_migration_seeds_the_vocabulary():
    assert {
        "terse",
        "verbose",
        "formal",
        "casual",
        "question",
        "instruction-last",
        "added-constraint",
        "role",
    } <= set(PhrasingTag.objects.values_list("slug", flat=True))


def test_an_author_submits_tags_and_an_edit_keeps_or_replaces_them(parity, alice):
    instruction = services.instruction_submit(
        task=parity,
        template="Is {number} even? Say yes or no.",
        author=alice,
        tags=["question", "terse", "terse"],
    )
    assert slugs(instruction) == {"question", "terse"}
    services.instruction_edit(
        instruction=instruction, template="Is {number} even? Reply yes or no.", by=alice
    )
    assert slugs(instruction) == {"question", "terse"}  # tags not given: unchanged
    services.instruction_edit(
        instruction=instruction, template="Is {number} even? Answer yes or no.", by=alice, tags=["formal"]
    )
    assert slugs(instruction) == {"formal"}


def test_an_unknown_tag_is_refused_with_the_vocabulary_and_nothing_is_saved(parity, alice):
    with pytest.raises(ApplicationError, match=r"Unknown tag 'shouty'; choose from: .*terse"):
        services.instruction_submit(task=parity, template="Is {number} even?", author=alice, tags=["shouty"])
    assert not Instruction.objects.filter(author=alice).exists()
    with pytest.raises(ApplicationError, match="At most 6 tags"):
        services.tags_check([f"t{i}" for i in range(7)])


def test_the_author_and_curators_tag_in_any_status_others_may_not(parity, alice, bob, carol):
    approved = parity.instructions.filter(status="approved").first()
    mine = services.instruction_submit(task=parity, template="Is {number} even?", author=alice)
    services.instruction_tag(instruction=mine, tags=["question"], by=alice)
    services.instruction_tag(instruction=approved, tags=["terse"], by=carol)  # a curator, on an approved one
    assert slugs(mine) == {"question"} and slugs(approved) == {"terse"}
    with pytest.raises(PermissionDenied):
        services.instruction_tag(instruction=mine, tags=[], by=bob)
    assert slugs(mine) == {"question"}


def test_the_api_reads_writes_and_filters_tags(parity, alice, bob, client):
    client.force_login(alice)
    made = client.post(
        "/api/instructions/",
        {"task": parity.id, "template": "Tell me: is {number} even?", "tags": ["question"]},
        content_type="application/json",
    )
    assert made.status_code == 201, made.content
    assert made.json()["tags"] == ["question"]
    pk = made.json()["id"]
    bad = client.post(f"/api/instructions/{pk}/tags/", {"tags": ["nope"]}, content_type="application/json")
    assert bad.status_code == 400 and "Unknown tag 'nope'" in bad.content.decode()
    assert slugs(Instruction.objects.get(pk=pk)) == {"question"}
    changed = client.post(
        f"/api/instructions/{pk}/tags/", {"tags": ["terse"]}, content_type="application/json"
    )
    assert changed.status_code == 200 and changed.json()["tags"] == ["terse"]
    assert [row["id"] for row in client.get("/api/instructions/?tag=terse&mine=true").json()["results"]] == [
        pk
    ]
    client.force_login(bob)
    refused = client.post(f"/api/instructions/{pk}/tags/", {"tags": []}, content_type="application/json")
    assert refused.status_code in (403, 404)  # bob may not even see alice's pending phrasing
    assert slugs(Instruction.objects.get(pk=pk)) == {"terse"}


def test_the_phrasing_page_saves_tags_for_its_author_and_refuses_others(parity, alice, bob, client):
    instruction = services.instruction_submit(task=parity, template="Is {number} even?", author=alice)
    url = reverse("phrasing_detail", args=[instruction.id])
    client.force_login(alice)
    page = client.get(url)
    assert page.status_code == 200 and b"Tag what it varies" in page.content
    assert client.post(url, {"tags": ["question", "terse"]}).status_code == 302
    assert slugs(instruction) == {"question", "terse"}
    # A value outside the vocabulary changes nothing and says so.
    answer = client.post(url, {"tags": ["question", "<script>"]}, follow=True)
    assert answer.status_code == 200 and b"nothing was changed" in answer.content
    assert slugs(instruction) == {"question", "terse"}
    approved = parity.instructions.filter(status="approved").first()
    client.force_login(bob)
    assert b"Tag what it varies" not in client.get(reverse("phrasing_detail", args=[approved.id])).content
    assert client.post(reverse("phrasing_detail", args=[approved.id]), {"tags": ["terse"]}).status_code == 403
    assert slugs(approved) == set()


def test_the_writing_form_offers_the_vocabulary_and_submits_tags(parity, alice, client):
    client.force_login(alice)
    url = reverse("phrasing_new", args=["demo", "parity"])
    assert b"What the tags mean" in client.get(url).content
    answer = client.post(url, {"template": "Quick: is {number} even? yes/no", "tags": ["terse"]})
    assert answer.status_code == 302
    assert slugs(Instruction.objects.get(author=alice)) == {"terse"}


def test_the_demo_tags_generated_phrasings_by_rule():
    assert demo_tags("Is {number} even?") == ["question", "terse"]
    assert (
        demo_tags(
            "Decide whether the number {number} is even or odd and reply with even or odd, nothing else."
        )
        == []
    )
    call_command("load_demo", "--generated", "8")
    generated = Instruction.objects.filter(source=GENERATOR_SOURCE).prefetch_related("tags")
    assert generated.exists()
    for instruction in generated:
        assert sorted(t.slug for t in instruction.tags.all()) == sorted(demo_tags(instruction.template))

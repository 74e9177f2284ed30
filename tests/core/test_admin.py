import pytest
from django.core.management import call_command
from django.urls import reverse

from collection.models import Instruction

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    "collection_benchmark",
    "collection_task",
    "collection_instance",
    "collection_collection",
    "collection_instruction",
    "collection_phrasingembedding",
    "core_workerping",
    "evaluation_languagemodel",
    "evaluation_modelvariant",
    "evaluation_scoringrun",
    "evaluation_prediction",
    "evaluation_phrasingresult",
    "evaluation_tasksummary",
    "evaluation_benchmarksummary",
    "evaluation_softprompt",
]


@pytest.fixture
def demo(db):
    call_command("load_demo")


@pytest.mark.parametrize("name", CHANGELISTS)
def test_admins_see_every_changelist(client, admin_user, demo, name):
    admin_user.is_staff = True
    admin_user.save()
    client.force_login(admin_user)
    assert client.get(reverse(f"admin:{name}_changelist")).status_code == 200


def test_an_instruction_page_shows_its_revisions_read_only(client, admin_user, demo):
    admin_user.is_staff = True
    admin_user.save()
    client.force_login(admin_user)
    phrasing = Instruction.objects.first()
    page = client.get(reverse("admin:collection_instruction_change", args=[phrasing.pk])).content.decode()
    assert phrasing.current_revision.content_hash in page


def test_authors_do_not_reach_the_admin(client, alice):
    client.force_login(alice)
    response = client.get(reverse("admin:collection_instruction_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_soft_prompt_cancel_action_cancels_and_reports_refusals(client, admin_user):
    from evaluation.models import LanguageModel, SoftPrompt

    admin_user.is_staff = True
    admin_user.save()
    model = LanguageModel.objects.create(name="m", source="/x", family="seq2seq")
    queued = SoftPrompt.objects.create(model=model, trigger="manual", config={})
    done = SoftPrompt.objects.create(model=model, trigger="manual", config={}, status="succeeded")
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:evaluation_softprompt_changelist"),
        {"action": "cancel", "_selected_action": [queued.id, done.id]},
        follow=True,
    )
    page = response.content.decode()
    assert f"Soft prompt {done.id}: Only a planned, queued or running training can be cancelled." in page
    assert "Cancelled 1 soft prompt(s)." in page
    queued.refresh_from_db()
    assert queued.status == "cancelled"


def test_what_scores_depend_on_is_read_only_in_admin(client, admin_user, demo):
    """An instance's gold or a task's sample changed in admin left stored predictions and figures wrong."""
    from collection.models import Instance, Task

    admin_user.is_staff = True
    admin_user.save()
    client.force_login(admin_user)
    instance = Instance.objects.first()
    url = reverse("admin:collection_instance_change", args=[instance.id])
    assert client.post(url, {"gold": (instance.gold + 1) % 2}).status_code == 403
    assert Instance.objects.get(id=instance.id).gold == instance.gold
    assert client.get(url).status_code == 200  # still shown, read only
    task = Task.objects.get(slug="parity")
    url = reverse("admin:collection_task_change", args=[task.id])
    response = client.post(
        url, {"name": "Parity, renamed", "description": "", "source": "", "external_id": ""}
    )
    assert response.status_code == 302
    task_after = Task.objects.get(id=task.id)
    assert task_after.name == "Parity, renamed" and task_after.eval_sample_size == task.eval_sample_size
    page = client.get(url).content.decode()
    assert 'name="eval_sample_size"' not in page and 'name="name"' in page
    # A task without phrasings (they protect theirs) can still be deleted with its instances: admin asks
    # delete permission on each instance.
    scratch = Task.objects.create(
        benchmark=task.benchmark, slug="scratch", name="Scratch", kind="binary", answer_format="option_text"
    )
    Instance.objects.create(task=scratch, source_id="0", inputs={}, options=["yes", "no"], gold=0)
    delete = reverse("admin:collection_task_delete", args=[scratch.id])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not Task.objects.filter(id=scratch.id).exists() and not Instance.objects.filter(task_id=scratch.id)

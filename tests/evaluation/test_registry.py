"""The model registry: a worker checks that a registered model loads before anything is scored on it, the
authoring preview renders a chat template from the stored text (sandboxed, no tokenizer, no file, no
network), and local paths are shown to admins only. Celery runs tasks eagerly here."""

from __future__ import annotations

import builtins
import html
import socket
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from rest_framework.test import APIClient

from collection import services as collection_services
from collection.demo import load_demo
from collection.models import Instruction, Task
from core.errors import ApplicationError
from core.jobs import JobStatus
from evaluation.ml import prompts
from evaluation.models import LanguageModel, ModelCheck, ScoringRun
from evaluation.prompt_formats import preview_wrapper
from evaluation.runs import registry
from tests.evaluation.tiny import CHAT_TEMPLATE

pytestmark = pytest.mark.django_db

# Meta-Llama-3-8B-Instruct's chat template, as its tokenizer_config.json has it.
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}"
)
LLAMA3_TOKENS = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}
LLAMA3_HEAD = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
LLAMA3_TAIL = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
NEW = "Decide whether {number} is divisible by two. Reply yes or no."


@pytest.fixture
def demo(db):
    load_demo()
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=2)


def approve_a_new_phrasing(alice, carol) -> Instruction:
    parity = Task.objects.get(benchmark__slug="demo", slug="parity")
    instruction = collection_services.instruction_submit(task=parity, template=NEW, author=alice)
    collection_services.instruction_review(instruction=instruction, reviewer=carol, status="approved")
    return instruction


# --- The check -------------------------------------------------------------------------------------------


def test_registering_queues_a_check_and_nothing_is_scored_until_it_loads(
    demo, tiny_models, alice, carol, client
):
    model = registry.language_model_register(name="tiny-t5", source=str(tiny_models["t5"]), family="seq2seq")
    assert model.state == LanguageModel.State.CHECKING
    (check,) = ModelCheck.objects.filter(model=model)
    assert (check.status, check.trigger, check.score) == (JobStatus.QUEUED, "registration", True)
    assert not ScoringRun.objects.exists()
    # The model page says so and polls its check fragment until the check is done.
    fragment = client.get(reverse("model_detail", args=["tiny-t5"]), HTTP_HX_REQUEST="true").content.decode()
    assert "waiting for a GPU worker" in fragment and 'hx-trigger="every 2s"' in fragment
    assert "<h1>" not in fragment
    # Approvals and "score what is missing" pass a model that is being checked over.
    approve_a_new_phrasing(alice, carol)
    assert not ScoringRun.objects.exists()
    with pytest.raises(ApplicationError, match="still being checked"):
        registry.language_model_score_missing(model=model)


def test_a_model_that_loads_becomes_ready_with_its_chat_template_stored_and_its_runs_queued(
    demo, tiny_models, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        model = registry.language_model_register(
            name="tiny-llama", source=str(tiny_models["llama"]), family="causal", prompt_format="chat"
        )
    model.refresh_from_db()
    assert (model.state, model.check_error) == (LanguageModel.State.READY, "")
    assert model.chat_template == CHAT_TEMPLATE
    assert model.special_tokens["bos_token"] == "<s>" and model.special_tokens["eos_token"] == "</s>"
    # The tokenizer states no limit (transformers' 1e30 placeholder), so the config's max_position_embeddings.
    assert model.max_input_tokens == 512
    assert model.checked_at is not None
    assert ModelCheck.objects.get(model=model).status == JobStatus.SUCCEEDED
    runs = ScoringRun.objects.filter(variant__model=model)
    assert runs.count() == 4 and {r.trigger for r in runs} == {"registration"}
    assert {r.status for r in runs} == {JobStatus.SUCCEEDED}


@pytest.mark.parametrize("source", ["/nonexistent/path", "no-such-org/no-such-model"])
def test_a_model_that_does_not_load_is_failed_with_the_reason_and_nothing_is_queued(
    demo, source, monkeypatch, alice, carol, django_capture_on_commit_callbacks
):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # a hub id is looked up, offline, and not found
    with django_capture_on_commit_callbacks(execute=True):
        model = registry.language_model_register(name="ghost", source=source, family="causal")
    model.refresh_from_db()
    check = ModelCheck.objects.get(model=model)
    assert model.state == LanguageModel.State.FAILED and check.status == JobStatus.FAILED
    assert f"Could not load causal model {source!r}" in model.check_error or "No model directory" in (
        model.check_error
    )
    assert check.error == model.check_error
    assert not ScoringRun.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        approve_a_new_phrasing(alice, carol)
    assert not ScoringRun.objects.exists()


def test_a_failed_model_is_retried_from_its_page_by_admins_and_then_scored(
    demo, tiny_models, client, admin_user, carol, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        model = registry.language_model_register(name="tiny-t5", source="/no/such/model", family="seq2seq")
    url = reverse("model_detail", args=["tiny-t5"])
    page = client.get(url).content.decode()
    assert "does not load" in page and "Retry the check" not in page and "/no/such" not in page
    client.force_login(carol)
    assert client.post(reverse("model_check_retry", args=["tiny-t5"])).status_code == 403
    client.force_login(admin_user)
    page = client.get(url).content.decode()
    assert "Retry the check" in page and "No model directory at /no/such/model" in page
    LanguageModel.objects.filter(id=model.id).update(source=str(tiny_models["t5"]))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("model_check_retry", args=["tiny-t5"]), follow=True)
    assert "will be checked again" in response.content.decode()
    model.refresh_from_db()
    assert model.state == LanguageModel.State.READY
    assert list(model.checks.values_list("status", flat=True)) == [JobStatus.SUCCEEDED, JobStatus.FAILED]
    # The registration's scoring, which the failed check never queued, is queued by the retry's success.
    assert ScoringRun.objects.filter(variant__model=model, trigger="registration").count() == 4


def test_the_api_retries_a_check_for_admins_and_refuses_one_already_running(
    demo, tiny_models, admin_user, alice
):
    model = registry.language_model_register(name="tiny-t5", source="/no/such/model", family="seq2seq")
    api = APIClient()
    api.force_authenticate(alice)
    assert api.post("/api/models/tiny-t5/retry-check/").status_code == 403
    api.force_authenticate(admin_user)
    response = api.post("/api/models/tiny-t5/retry-check/")
    assert response.status_code == 400 and "being checked already" in response.json()["detail"]
    ModelCheck.objects.filter(model=model).update(status=JobStatus.FAILED, error="Could not load")
    LanguageModel.objects.filter(id=model.id).update(state="failed", check_error="Could not load")
    body = api.post("/api/models/tiny-t5/retry-check/").json()
    assert (body["state"], body["check_error"]) == ("checking", "")
    assert model.checks.filter(status=JobStatus.QUEUED).count() == 1


def test_the_register_command_checks_in_the_foreground_unless_told_to_queue(demo, tiny_models, capsys):
    call_command("register_model", "tiny-t5", str(tiny_models["t5"]), "--family", "seq2seq")
    assert "Registered tiny-t5: it loads. Queued 4 run(s)" in capsys.readouterr().out
    assert LanguageModel.objects.get(name="tiny-t5").state == LanguageModel.State.READY
    with pytest.raises(CommandError, match="does not load, so nothing is scored on it: No model directory"):
        call_command("register_model", "ghost", "/no/such/model", "--family", "causal")
    assert LanguageModel.objects.get(name="ghost").state == LanguageModel.State.FAILED
    call_command("register_model", "later", str(tiny_models["gpt2"]), "--family", "causal", "--queue")
    assert "a GPU worker will check that it loads" in capsys.readouterr().out
    later = LanguageModel.objects.get(name="later")
    assert later.state == LanguageModel.State.CHECKING
    assert later.checks.get().status == JobStatus.QUEUED
    assert not ScoringRun.objects.filter(variant__model=later).exists()


def test_a_model_name_that_is_not_a_slug_is_refused_by_the_command_as_by_the_api(db, client, admin_user):
    # It is in the model's page address: registered by the command, it made /models/ answer 500 for all.
    with pytest.raises(CommandError, match="The model name 'Bad Name' is not a slug"):
        call_command("register_model", "Bad Name", "google/flan-t5-base", "--family", "seq2seq", "--queue")
    assert not LanguageModel.objects.exists()
    assert client.get(reverse("model_list")).status_code == 200


def test_models_made_without_registration_are_ready_and_never_checked(demo, alice, carol):
    # As the published-results importer and older rows: nothing to check, and nothing changes for them.
    inactive = LanguageModel.objects.create(
        name="flan-t5-xxl", source="published results only", family="seq2seq", is_active=False
    )
    assert inactive.state == LanguageModel.State.READY and not inactive.checks.exists()
    approve_a_new_phrasing(alice, carol)
    assert not ScoringRun.objects.exists() and not ModelCheck.objects.exists()


# --- The preview ------------------------------------------------------------------------------------------


def chat_model(**fields) -> LanguageModel:
    defaults = {
        "name": "llama-3-chat",
        "source": "no-such-org/no-such-model",
        "family": "causal",
        "prompt_format": "chat",
        "state": "ready",
        "chat_template": LLAMA3_TEMPLATE,
        "special_tokens": LLAMA3_TOKENS,
    }
    return LanguageModel.objects.create(**{**defaults, **fields})


def preview(client, model_name: str) -> str:
    response = client.post(
        reverse("phrasing_preview", args=["demo", "parity"]), {"template": NEW, "preview_model": model_name}
    )
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_the_preview_of_a_hub_chat_model_renders_its_stored_template_without_network_files_or_transformers(
    demo, client, alice, monkeypatch
):
    import transformers

    chat_model()
    client.force_login(alice)
    preview(client, "llama-3-chat")  # warms what any request loads once (templates, the embedding model)

    def refuse(*args, **kwargs):
        raise AssertionError("the preview reached for a tokenizer, a file or the network")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", refuse)
    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` would raise
    page = preview(client, "llama-3-chat")
    first = Task.objects.get(slug="parity").instances.filter(split="eval").order_by("id").first()
    bare = f"Decide whether {first.inputs['number']} is divisible by two. Reply yes or no."
    assert LLAMA3_HEAD + bare + LLAMA3_TAIL in page


def test_a_hostile_stored_template_is_refused_by_the_sandbox_and_the_preview_shows_the_bare_text(
    demo, client, alice
):
    chat_model(chat_template="{{ ''.__class__.__mro__ }}{% for m in messages %}{{ m.content }}{% endfor %}")
    client.force_login(alice)
    page = preview(client, "llama-3-chat")
    assert (
        "chat template cannot be applied (access to attribute '__class__' of 'str' object is unsafe.)" in page
    )
    assert "Decide whether" in page and "<class" not in page and "<|start_header_id|>" not in page


def test_a_model_whose_template_is_not_stored_previews_unwrapped_with_a_note(db):
    checking = chat_model(name="being-checked", state="checking", chat_template="")
    failed = chat_model(name="broken", state="failed", check_error="Could not load", chat_template="")
    wrap, fmt, note = preview_wrapper(checking)
    assert (wrap("a ", "b"), fmt) == (("a ", "b"), "none") and "once a worker has checked" in note
    assert "did not load" in preview_wrapper(failed)[2]
    wrap, fmt, note = preview_wrapper(chat_model(name="ok"))
    assert (wrap("a ", "b"), fmt, note) == ((LLAMA3_HEAD + "a ", "b" + LLAMA3_TAIL), "chat", "")


LLAMA2_TEMPLATE = (  # Llama-2-chat's, cut to one user message: it strips the message
    "{% for message in messages %}{{ bos_token + '[INST] ' + message['content'].strip() + ' [/INST]' }}"
    "{% endfor %}"
)


ODD_TEMPLATES = [  # what a template may do to the message besides trimming it (the review's cases)
    "{% for m in messages %}<|user|>\n{{ m['content'].strip('\\n') }}<|end|>{% endfor %}<|assistant|>",
    "{% for m in messages %}User: \n{{ m['content'] | trim }}\n{% endfor %}Assistant:",
    "{% for m in messages %}[U]{{ m['content'].rstrip() }} \n[/U]{% endfor %}",
    "{% for m in messages %}<|user|>\n{{ m['content'] | replace('\\n', ' ') }}<|end|>{% endfor %}<|assistant|>",
]


@pytest.mark.parametrize("template", [CHAT_TEMPLATE, LLAMA3_TEMPLATE, LLAMA2_TEMPLATE, *ODD_TEMPLATES])
def test_the_scorer_frames_a_message_as_the_tokenizers_template_does(tiny_models, template):
    """The scorer and the preview frame a prompt with the sandboxed renderer; what it gives must be what the
    tokenizer's own apply_chat_template gives for the same message, the templates that trim the message's
    whitespace (Llama-2's strip(), Llama-3's | trim) included: a prompt ending in "Answer: " or a line break
    was once framed untrimmed."""
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tiny_models["llama"]))
    tokenizer.chat_template = template
    for shared, rest in [
        ("Is 14 even?", " Answer: "),
        ("\nQuestion:", "\nIs 14 even?\n"),
        ("", "  x  "),
        (" a", ""),
    ]:
        framed = "".join(prompts.FORMATS["chat"].wrap(shared, rest, tokenizer))
        message = [{"role": "user", "content": shared + rest}]
        assert framed == tokenizer.apply_chat_template(message, tokenize=False, add_generation_prompt=True)


def test_a_template_that_asks_for_the_date_gets_a_fixed_one():
    """Llama-3.2's and 3.3's templates write "Today Date: ..." into the prompt; scores must not change with
    the day they are computed on."""
    template = (
        "Today Date: {{ strftime_now('%d %b %Y') }}\n{% for m in messages %}{{ m['content'] }}{% endfor %}"
    )
    assert prompts.chat_wrap_from_template(template, {})("Is it?", "")[0] == "Today Date: 26 Jul 2024\nIs it?"


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ cycler.__init__.__globals__ }}", "unsafe"),
        ("{{ messages.append(1) }}", "unsafe"),
        ("{% set ns = namespace() %}{% set ns._x = 1 %}", "may not store"),
        ("{{ 'x' * 100000 }}", "may not build a sequence"),
        ("{{ 2 ** 100000 }}", "may not raise to a power"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursion"),
        ("{{ raise_exception('Only user and assistant roles are supported') }}", "Only user and assistant"),
        ("no messages", "does not show the user's message"),
        ("{% for m in messages %}", "Unexpected end of template"),
    ],
)
def test_the_sandbox_refuses_what_a_chat_template_may_not_do(template, reason):
    with pytest.raises(prompts.ChatTemplateError, match=reason):
        prompts.chat_wrap_from_template(template, {})


# --- Local paths ----------------------------------------------------------------------------------------------


def test_local_paths_are_shown_to_admins_only_on_model_pages_and_in_the_api(db, client, admin_user):
    LanguageModel.objects.create(name="local", source="/srv/models/secret-llama", family="causal")
    LanguageModel.objects.create(name="hub", source="google/flan-t5-base", family="seq2seq")
    pages = [reverse("model_list"), reverse("model_detail", args=["local"])]
    for url in pages:
        page = client.get(url).content.decode()
        assert "/srv/models" not in page and "(local path)" in page
    assert "google/flan-t5-base" in client.get(reverse("model_detail", args=["hub"])).content.decode()
    api = APIClient()
    sources = {m["name"]: m["source"] for m in api.get("/api/models/").json()["results"]}
    assert sources == {"hub": "google/flan-t5-base", "local": "(local path)"}
    assert api.get("/api/models/local/").json()["source"] == "(local path)"

    client.force_login(admin_user)
    for url in pages:
        assert "/srv/models/secret-llama" in client.get(url).content.decode()
    api.force_authenticate(admin_user)
    assert api.get("/api/models/local/").json()["source"] == "/srv/models/secret-llama"


@pytest.mark.parametrize(
    ("source", "local"),
    [
        ("/srv/m", True),
        ("./m", True),
        ("~/m", True),
        ("models/org/m", True),
        ("C:\\models\\m", True),
        ("gpt2", False),
        ("google/flan-t5-base", False),
    ],
)
def test_what_counts_as_a_local_path(source, local):
    assert LanguageModel(source=source).source_is_local is local


# --- The input length ------------------------------------------------------------------------------------


def register_llama(tiny_models, name, **kwargs) -> LanguageModel:
    kwargs.setdefault("score", False)
    return registry.language_model_register(
        name=name, source=str(tiny_models["llama"]), family="causal", check_now=True, **kwargs
    )


def test_an_input_length_given_at_registration_survives_the_check_and_a_blank_one_is_the_models_own(
    db, tiny_models
):
    given = register_llama(tiny_models, "given", max_input_tokens=64, truncation="cut_end")
    assert (given.state, given.max_input_tokens, given.truncation) == ("ready", 64, "cut_end")
    own = register_llama(tiny_models, "own")
    assert (own.max_input_tokens, own.truncation) == (512, "keep_end")  # the config's max_position_embeddings
    with pytest.raises(ApplicationError, match="truncation"):
        register_llama(tiny_models, "bad-side", truncation="middle")
    with pytest.raises(ApplicationError, match="max_input_tokens"):
        register_llama(tiny_models, "bad-length", max_input_tokens=0)
    assert not LanguageModel.objects.filter(name__startswith="bad").exists()


def test_a_check_leaves_the_input_length_a_models_cells_were_scored_under(
    demo, tiny_models, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        model = register_llama(tiny_models, "scored", score=True)
    assert model.max_input_tokens == 512 and registry.input_limit_is_fixed(model)
    # As a model scored before it had a limit: its cells were never cut, and a new check must not start to.
    LanguageModel.objects.filter(id=model.id).update(max_input_tokens=None)
    with django_capture_on_commit_callbacks(execute=True):
        registry.language_model_check_retry(model=model)
    model.refresh_from_db()
    assert model.state == LanguageModel.State.READY and model.max_input_tokens is None


def test_the_register_command_and_the_api_set_the_input_length(db, tiny_models, admin_user):
    out = StringIO()
    call_command(
        "register_model",
        "cmd",
        str(tiny_models["t5"]),
        "--family",
        "seq2seq",
        "--no-score",
        "--max-input-tokens",
        "512",
        "--truncation",
        "cut_end",
        stdout=out,
    )
    assert LanguageModel.objects.filter(name="cmd", max_input_tokens=512, truncation="cut_end").exists()
    # Not "every cell in scope is already scored": a new model has none, and --no-score queued nothing.
    assert "Nothing queued (--no-score)." in out.getvalue() and "already scored" not in out.getvalue()
    with pytest.raises(CommandError):
        call_command(
            "register_model", "x", str(tiny_models["t5"]), "--family", "seq2seq", "--truncation", "x"
        )
    api = APIClient()
    api.force_authenticate(admin_user)
    payload = {"name": "api", "source": str(tiny_models["t5"]), "family": "seq2seq"}
    body = api.post("/api/models/", {**payload, "max_input_tokens": 96, "truncation": "cut_end"}).json()
    assert (body["max_input_tokens"], body["truncation"]) == (96, "cut_end")
    assert api.post("/api/models/", {**payload, "name": "api-2", "truncation": "middle"}).status_code == 400
    assert api.post("/api/models/", {**payload, "name": "api-3", "max_input_tokens": 0}).status_code == 400
    assert api.get("/api/models/api/").json()["truncation"] == "cut_end"


def test_admin_sets_the_input_length_until_the_model_has_predictions(
    demo, tiny_models, client, admin_user, django_capture_on_commit_callbacks
):
    admin_user.is_staff = True
    admin_user.save()
    client.force_login(admin_user)
    model = register_llama(tiny_models, "edited")
    url = reverse("admin:evaluation_languagemodel_change", args=[model.id])
    form = {
        "name": "edited",
        "source": model.source,
        "family": "causal",
        "dtype": "auto",
        "prompt_format": "none",
        "batch_size": 16,
        "is_active": "on",
        "max_input_tokens": 128,
        "truncation": "cut_end",
        "variants-TOTAL_FORMS": 1,
        "variants-INITIAL_FORMS": 1,
        "variants-0-id": model.variants.get().id,
        "variants-0-model": model.id,
    }
    page = client.get(url).content.decode()
    assert 'name="max_input_tokens"' in page and 'name="truncation"' in page
    assert client.post(url, form).status_code == 302
    model.refresh_from_db()
    assert (model.max_input_tokens, model.truncation) == (128, "cut_end")

    with django_capture_on_commit_callbacks(execute=True):
        registry.language_model_score_missing(model=model)
    page = client.get(url).content.decode()
    assert 'name="max_input_tokens"' not in page and 'name="truncation"' not in page
    assert "Its input length and truncation are fixed" in page
    assert client.post(url, {**form, "max_input_tokens": 64, "truncation": "keep_end"}).status_code == 302
    model.refresh_from_db()
    assert (model.max_input_tokens, model.truncation) == (128, "cut_end")

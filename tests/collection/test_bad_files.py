"""Bad files, through every importer command and the curators' upload page: over the size or row limit, in
the wrong encoding, not text at all, or cut short. Each is refused with a message naming the file and the
problem, and nothing is written."""

from __future__ import annotations

import csv
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from collection import access
from collection.models import Benchmark, Collection, Instance, Instruction, Task
from evaluation.models import LanguageModel, PhrasingResult

pytestmark = pytest.mark.django_db


def db_state() -> tuple[int, ...]:
    return tuple(
        m.objects.count() for m in (Benchmark, Task, Instance, Instruction, LanguageModel, PhrasingResult)
    )


@pytest.fixture
def parity(db) -> Task:
    task = Task.objects.create(
        benchmark=Benchmark.objects.create(slug="b", name="Bench"),
        slug="t",
        name="Parity",
        kind="binary",
        answer_format="option_text",
        input_fields=["number"],
        label_space=["yes", "no"],
        max_options=2,
    )
    Instance.objects.create(task=task, source_id="0", inputs={"number": "2"}, options=["yes", "no"], gold=0)
    return task


# --- Importer commands -------------------------------------------------------------------------------------


@dataclass
class Importer:
    """How to write a valid file of n rows for one importer, and the command that imports it."""

    name: str
    filename: str
    header: str
    row: str  # formatted with i
    command: list[str]  # "{path}" / "{dir}" are replaced
    json_examples: bool = False

    def content(self, n: int) -> str:
        if self.json_examples:
            examples = [
                {"input": f"Is {i} even?", "target_scores": {"yes": int(i % 2 == 0), "no": i % 2}}
                for i in range(n)
            ]
            return json.dumps({"name": "parity", "description": "d", "examples": examples}, indent=1)
        return self.header + "".join(self.row.format(i=i) + "\n" for i in range(n))

    def write(self, root: Path, data: bytes) -> list[str]:
        path = root / self.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return [a.replace("{path}", str(path)).replace("{dir}", str(path.parent)) for a in self.command]


IMPORTERS = [
    Importer("mmlu", "mmlu/anatomy_test.csv", "", '"Question {i}?",a,b,c,d,A', ["import_mmlu", "{dir}"]),
    Importer(
        "tasks-csv",
        "tasks.csv",
        "task,id,question,option_A,option_B,answer\n",
        "quiz,{i},Question {i}?,yes,no,A",
        ["import_tasks", "{path}", "--benchmark", "mine"],
    ),
    Importer(
        "tasks-jsonl",
        "tasks.jsonl",
        "",
        '{{"task": "quiz", "id": "{i}", "inputs": {{"q": "Q{i}?"}}, "options": ["yes", "no"], "answer": 0}}',
        ["import_tasks", "{path}", "--benchmark", "mine"],
    ),
    Importer(
        "phrasings-csv",
        "phrasings.csv",
        "task,template,source\n",
        'b/t,"Phrasing {i}: is {{number}} even?",file',
        ["import_instructions", "{path}", "--format", "csv"],
    ),
    Importer(
        "phrasings-jsonl",
        "phrasings.jsonl",
        "",
        '{{"task": "b/t", "template": "Phrasing {i}: is {{number}} even?", "source": "file"}}',
        ["import_instructions", "{path}", "--format", "jsonl"],
    ),
    Importer("bigbench", "parity_task/task.json", "", "", ["import_bigbench", "{dir}"], json_examples=True),
    Importer(
        "results",
        "results/flan.csv",
        "Model,Dataset,Collection,Type,ID,Shots,Performance,Metric,Include?\n",
        "flan-t5-xl,Winowhy,BBL,Unobserved,{i},0,0.5,acc,True",
        ["import_results", "{dir}"],
    ),
]


def utf16(text: str) -> bytes:
    return text.encode("utf-16")  # with its byte-order mark, as Excel's "Unicode text" saves


def latin1(text: str) -> bytes:
    return text.replace("?", "é?", 1).encode("latin-1")


def nul_on_line_2(text: str) -> bytes:
    first, rest = text.split("\n", 1)
    return (first + "\n" + rest[:5] + "\x00" + rest[5:]).encode()


def cut_short(text: str) -> bytes:
    return text.rstrip("\n")[:-12].encode()  # the last row (or the JSON document) loses its end


FAULTS = {
    # fault: (limits to set, how to spoil a valid 4-row file, what the message must say)
    "over the row limit": ({"IMPORT_MAX_ROWS": 3}, str.encode, "more than 3 rows; the limit is 3 per file"),
    "over the size limit": (
        {"IMPORT_MAX_BYTES": 1024},
        lambda t: t.encode() + b" " * 1100,
        "over the import limit of 1,024",
    ),
    "UTF-16": ({}, utf16, "UTF-16 text (as Excel's 'Unicode text' saves it); re-save it as UTF-8"),
    "Latin-1": ({}, latin1, "not UTF-8 text (byte 0xe9 at offset"),
    "a NUL byte": ({}, nul_on_line_2, "line 2: a NUL byte; this is not a text file"),
    "an Excel workbook": ({}, lambda t: b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)), "a ZIP archive"),
    "cut short": (
        {},
        cut_short,
        {
            "mmlu": "line 4: expected 6 columns (question, A, B, C, D, answer), found 1",
            "tasks-csv": "line 5: fewer values than columns (is the row cut short?)",
            "tasks-jsonl": "line 4: not valid JSON",
            "phrasings-csv": "line 5: fewer values than columns (is the row cut short?)",
            "phrasings-jsonl": "line 4: not valid JSON",
            "bigbench": "not valid JSON",
            "results": "line 5: expected 9 values, one per column (is the row cut short?)",
        },
    ),
}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("importer", IMPORTERS, ids=[i.name for i in IMPORTERS])
def test_a_bad_file_is_refused_by_every_importer_with_nothing_written(
    importer, fault, parity, tmp_path, settings
):
    limits, spoil, message = FAULTS[fault]
    for name, value in limits.items():
        setattr(settings, name, value)
    args = importer.write(tmp_path, spoil(importer.content(4)))
    before = db_state()
    with pytest.raises(CommandError) as refused:
        call_command(*args)
    text = str(refused.value)
    assert "nothing was changed" in text and importer.filename.split("/")[-1] in text
    if isinstance(message, dict):
        message = message[importer.name]
    assert message in text, text
    assert db_state() == before


@pytest.mark.parametrize("importer", IMPORTERS, ids=[i.name for i in IMPORTERS])
def test_the_same_files_unspoiled_import(importer, parity, tmp_path, settings):
    """The control for the test above: the 4-row files it spoils import."""
    settings.IMPORT_MAX_ROWS = 4
    args = importer.write(tmp_path, importer.content(4).encode())
    before = db_state()
    call_command(*args)
    assert db_state() != before


# --- The upload page ---------------------------------------------------------------------------------------

GOOD = "task,template,source\nb/t,Is {number} even? Answer yes or no.,workshop\nb/t,{number}: even or odd?,\n"


def upload(client, name: str, data: bytes):
    return client.post(reverse("curation_upload"), {"file": SimpleUploadedFile(name, data)})


def test_a_curator_uploads_phrasings_into_the_review_queue(parity, carol, client):
    client.force_login(carol)
    response = upload(client, "workshop.csv", GOOD.encode())
    assert response.status_code == 302 and response["Location"] == reverse("curation_queue")
    phrasings = Instruction.objects.order_by("id")
    assert [(p.template, p.status, p.author, p.source) for p in phrasings] == [
        ("Is {number} even? Answer yes or no.", "pending", carol, "workshop"),
        ("{number}: even or odd?", "pending", carol, ""),
    ]
    assert all(p.collection == Collection.objects.get(slug="crowd") for p in phrasings)
    # Credited to the uploader, so another curator reviews them.
    assert not any(access.can_review(carol, p) for p in phrasings)
    page = client.get(reverse("curation_queue")).content.decode()
    assert "Imported workshop.csv: phrasings created: 2." in page and "{number}: even or odd?" in page
    # The same file again adds nothing.
    assert upload(client, "workshop.csv", GOOD.encode()).status_code == 302
    assert Instruction.objects.count() == 2


JSONL_BAD_LABELS = '{"task": "b/t", "template": "Is {number} even?", "source": "s", "labels": "yes"}\n'

BAD_UPLOADS = {
    # name: (file name, bytes, limits, message)
    "over the size limit": (
        "big.csv",
        GOOD.encode() + b"#" * 3000,
        {"UPLOAD_MAX_BYTES": 2048},
        "The file is over the upload limit of 2,048 bytes.",
    ),
    "over the row limit": (
        "many.csv",
        (GOOD + "b/t,Third {number}?,s\n").encode(),
        {"UPLOAD_MAX_ROWS": 2},
        "many.csv: more than 2 rows; the limit is 2 per file",
    ),
    "UTF-16": ("u.csv", utf16(GOOD), {}, "u.csv: UTF-16 text"),
    "Latin-1": (
        "l.csv",
        GOOD.replace("even?", "pair é?").encode("latin-1"),
        {},
        "l.csv: not UTF-8 text (byte 0xe9",
    ),
    "a workbook": ("w.csv", b"PK\x03\x04" + bytes(300), {}, "w.csv: a ZIP archive (an Excel workbook?)"),
    "a NUL byte": (
        "n.csv",
        GOOD.replace("workshop", "work\x00shop").encode(),
        {},
        "n.csv: line 2: a NUL byte",
    ),
    "another extension": ("p.xlsx", GOOD.encode(), {}, "p.xlsx: upload a .csv or .jsonl file"),
    "an empty file": ("e.csv", b"", {}, "The file is empty."),
    "a missing column": (
        "m.csv",
        b"task,text\nb/t,Is {number} even?\n",
        {},
        "m.csv: missing CSV column(s): template",
    ),
    "a row with too many values": (
        "x.csv",
        (GOOD + "b/t,Odd {number}?,s,extra\n").encode(),
        {},
        "x.csv: line 4: more values than columns",
    ),
    "an unknown task": (
        "t.csv",
        (GOOD + "b/nope,Odd {number}?,s\n").encode(),
        {},
        "t.csv: line 4: no task 'b/nope'",
    ),
    "template injection on the last row": (
        "i.csv",
        (GOOD + "b/t,{number.__class__.__mro__},s\n").encode(),
        {},
        "i.csv: line 4:",
    ),
    "broken JSON": (
        "j.jsonl",
        b'{"task": "b/t", "template": "Is {number} even?", "source": "s"}\n{"task": "b/t",\n',
        {},
        "j.jsonl: line 2: not valid JSON",
    ),
    "a JSON line that is not an object": (
        "a.jsonl",
        b'["b/t", "Is {number} even?"]\n',
        {},
        "a.jsonl: line 1: expected a JSON object",
    ),
    "labels that are not a list": (
        "k.jsonl",
        JSONL_BAD_LABELS.encode(),
        {},
        "k.jsonl: line 1: 'labels' must be a list",
    ),
    "a row cut short": ("c.csv", GOOD.encode()[:-10], {}, "c.csv: line 3: fewer values than columns"),
    "another author": (
        "o.csv",
        b"task,template,author\nb/t,Is {number} even?,alice\n",
        {},
        "o.csv: line 2: an upload is credited to you, not to 'alice'",
    ),
    "a tuning collection": (
        "d.csv",
        b"task,template,collection\nb/t,Is {number} even?,flan\n",
        {},
        "d.csv: line 2: uploads go into the crowd collection, not 'flan'",
    ),
    "a long name": ("x" * 300 + ".csv", b"task,template\nb/nope,Odd {number}?\n", {}, "no task 'b/nope'"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_a_bad_upload_is_refused_with_a_clear_message_and_nothing_written(
    case, parity, carol, client, settings
):
    name, data, limits, message = BAD_UPLOADS[case]
    for setting, value in limits.items():
        setattr(settings, setting, value)
    client.force_login(carol)
    before = db_state()
    response = upload(client, name, data)
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert message in page, page[page.find('class="error"') :][:500]
    assert "Nothing was imported." in page or "The file is empty." in page
    assert db_state() == before


def test_an_oversized_upload_is_not_read_past_the_limit(parity, carol, settings, monkeypatch):
    """The upload handler stops at the limit, so the importer never sees the file, whatever its size; the CSRF
    check still runs (on the token the form sends before the file)."""
    from django.test import Client

    from collection.views import uploads

    settings.UPLOAD_MAX_BYTES = 4096
    seen = []
    monkeypatch.setattr(uploads, "import_instructions_upload", lambda **kwargs: seen.append(kwargs))
    client = Client(enforce_csrf_checks=True)
    client.force_login(carol)
    client.get(reverse("curation_upload"))
    token = client.cookies["csrftoken"].value
    huge = SimpleUploadedFile("huge.csv", GOOD.encode() + b"#" * (5 * 1024 * 1024))
    response = client.post(reverse("curation_upload"), {"csrfmiddlewaretoken": token, "file": huge})
    assert response.status_code == 400 and not seen
    assert "The file is over the upload limit of 4,096 bytes." in response.content.decode()
    # Without the token the same request is refused by the CSRF check.
    huge.seek(0)
    assert client.post(reverse("curation_upload"), {"file": huge}).status_code == 403


# --- Any content: a 400 naming the line and the problem, never a server error (issue 27) ------------------


def jsonl(**fields) -> bytes:
    return (json.dumps({"task": "b/t", "template": "Is {number} even? yes or no", **fields}) + "\n").encode()


DEEP = 100_000
HOSTILE_UPLOADS = {
    # name: (file name, bytes, message)
    "a line nested 100,000 deep": (
        "deep.jsonl",
        jsonl(source="s") + b'{"task": ' + b"[" * DEEP + b"]" * DEEP + b"}\n",
        "deep.jsonl: line 2: nests deeper than",
    ),
    "a field nested 900 deep": (
        "deep2.jsonl",
        b'{"task": "b/t", "template": "Is {number} even?", "source": ' + b"[" * 900 + b"]" * 900 + b"}\n",
        "deep2.jsonl: line 1: nests deeper than",
    ),
    "a 5,000-digit integer": (
        "n.jsonl",
        jsonl(source="s")
        + b'{"task": "b/t", "template": "Is {number} even?", "source": '
        + b"7" * 5000
        + b"}\n",
        "n.jsonl: line 2: a number",
    ),
    "an escaped NUL": (
        "z.jsonl",
        jsonl(source="wor\x00kshop"),
        "z.jsonl: line 1: a text holds a NUL character",
    ),
    "an unpaired surrogate": (
        "s.jsonl",
        b'{"task": "b/t", "template": "Is {number} even? \\ud800", "source": "s"}\n',
        "s.jsonl: line 1: a text holds an unpaired surrogate",
    ),
    "a source too long": ("l.jsonl", jsonl(source="s" * 301), "l.jsonl: line 1: 'source' is longer than 300"),
    "an external id too long": (
        "e.csv",
        b"task,template,source,external_id\nb/t,Is {number} even?,s," + b"9" * 201 + b"\n",
        "e.csv: line 2: 'external_id' is longer than 200",
    ),
    "a task that is not text": (
        "t.jsonl",
        jsonl(task={"b": "t"}, source="s"),
        "t.jsonl: line 1: 'task' must be",
    ),
    "a template over the length limit": (
        "x.jsonl",
        jsonl(template="Is {number} even? " + "x" * 5000, source="s"),
        "x.jsonl: line 1:",
    ),
}


@pytest.mark.parametrize("case", HOSTILE_UPLOADS)
def test_hostile_upload_content_is_a_400_naming_the_line_with_nothing_written(case, parity, carol, client):
    name, data, message = HOSTILE_UPLOADS[case]
    client.force_login(carol)
    before = db_state()
    response = upload(client, name, data)
    page = html.unescape(response.content.decode())
    assert response.status_code == 400, page[:500]
    assert message in page, page[page.find('class="error"') :][:500]
    assert "Nothing was imported." in page
    assert db_state() == before


COLUMNS = ["task", "template", "source", "author", "collection", "external_id", "labels"]
any_text = st.text(st.characters(codec=None, categories=None), max_size=30)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**120), max_value=10**120)
    | st.floats(allow_nan=True, allow_infinity=True)
    | any_text
    | st.sampled_from(["b/t", "Is {number} even? yes or no", "{number.__class__}", "carol", "crowd"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=8,
)
jsonl_lines = st.one_of(
    st.dictionaries(st.sampled_from(COLUMNS) | any_text, json_values, max_size=6).map(json.dumps),
    any_text,
)
csv_cells = st.one_of(
    any_text, st.sampled_from(["b/t", "Is {number} even? yes or no", "a|b", '"', ",", "\n"])
)


def csv_file(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


csv_files = st.builds(
    csv_file,
    st.lists(st.sampled_from(COLUMNS) | any_text, min_size=1, max_size=5),
    st.lists(st.lists(csv_cells, max_size=6), max_size=4),
)
uploads = st.one_of(
    st.tuples(st.just("h.jsonl"), st.lists(jsonl_lines, min_size=1, max_size=4).map("\n".join)),
    st.tuples(st.just("h.csv"), csv_files),
    st.tuples(st.sampled_from(["h.csv", "h.jsonl"]), any_text),
)


@hypothesis_settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(upload_file=("d.jsonl", '{"task": ' + "[" * DEEP + "]" * DEEP + "}"))
@example(upload_file=("n.jsonl", '{"task": "b/t", "template": "x", "source": ' + "7" * 5000 + "}"))
@example(upload_file=("s.csv", "task,template,source\nb/t,Is {number} even?,\ud800\n"))
@given(upload_file=uploads)
def test_any_upload_content_is_imported_or_refused_with_a_400_never_a_server_error(
    parity, carol, client, upload_file
):
    name, text = upload_file
    client.force_login(carol)
    before = db_state()
    response = upload(client, name, text.encode("utf-8", "surrogatepass"))
    assert response.status_code in (302, 400), (name, text[:300], response.status_code)
    if response.status_code == 400:
        page = html.unescape(response.content.decode())
        assert "Nothing was imported." in page or "The file is empty." in page, page[:300]
        assert db_state() == before

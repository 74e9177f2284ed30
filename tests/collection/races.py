"""Races between an author's edit and curators' decisions, through every door, with real threads: one database
connection per request, as web processes hold them. Used by tests/collection/test_review_races.py in-process
(PostgreSQL) and in a subprocess against a SQLite file (the embedded default), so both databases run the same
matrix. `race_matrix` returns what it saw; the tests assert on it."""

from __future__ import annotations

import itertools
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field

EDIT_DOORS = ("api", "page")
DECISION_DOORS = ("queue", "api", "bulk", "admin")
DECISIONS = ("approved", "needs_edit", "rejected")
REASON = "Please say 'even number'."


@dataclass
class Summary:
    races: int = 0
    # What each edit-versus-decision race ended as, e.g. "approved/edit refused", "edited/decision refused".
    outcomes: Counter = field(default_factory=Counter)
    # Anything that breaks the promise: a decided phrasing whose text is not the one decided on, two
    # decisions accepted on one text, an edit accepted on a decided phrasing, a server error.
    violations: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"races": self.races, "outcomes": dict(self.outcomes), "violations": self.violations}


def race_matrix(*, rounds: int, mixed_rounds: int, mixed_threads: int = 10, tag: str = "r") -> dict:
    """Every decision through every door against an edit through each edit door, `rounds` times each; then
    `mixed_rounds` bursts of `mixed_threads` concurrent mixed decisions (through every door) on one text."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from collection.demo import load_demo
    from collection.models import Task

    load_demo()
    task = Task.objects.get(benchmark__slug="demo", slug="parity")
    User = get_user_model()
    author = User.objects.create_user(username=f"race-author-{tag}")
    author.groups.add(Group.objects.get(name="author"))
    curators = []
    for i in range(mixed_threads):
        curator = User.objects.create_user(username=f"race-curator-{tag}-{i}", is_staff=True)
        curator.groups.add(Group.objects.get(name="curator"))
        curators.append(curator)
    summary = Summary()
    numbers = itertools.count()
    for _ in range(rounds):
        for decision, door, edit_door in itertools.product(DECISIONS, DECISION_DOORS, EDIT_DOORS):
            _edit_race(summary, task, author, curators[0], decision, door, edit_door, next(numbers), tag)
    doors = itertools.cycle(itertools.product(DECISION_DOORS, DECISIONS))
    for _ in range(mixed_rounds):
        chosen = [next(doors) for _ in range(mixed_threads)]
        _mixed_race(summary, task, author, curators, chosen, next(numbers), tag)
    return summary.as_dict()


def _phrasing(task, author, number: int, tag: str):
    from collection import services
    from collection.models import Collection

    return services.instruction_create(
        task=task,
        template=f"Race {tag} {number}: is {{number}} even? Answer yes or no.",
        collection=Collection.objects.get(slug=services.CROWD_COLLECTION),
        author=author,
    )


def _run_at_once(calls) -> list[tuple[bool, str]]:
    """Run the calls in threads released together; each returns (accepted, what it answered)."""
    from django.db import connection

    barrier = threading.Barrier(len(calls))
    results: list[tuple[bool, str] | None] = [None] * len(calls)

    def run(index: int, call) -> None:
        try:
            barrier.wait()
            results[index] = call()
        except BaseException as exc:  # noqa: BLE001 - reported as a violation, never lost in a thread
            results[index] = (False, f"exception {type(exc).__name__}: {exc}")
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def _client(user, *, api: bool = False):
    from django.test import Client
    from rest_framework.test import APIClient

    # Each answers with its status; an exception in a view is a 500, never re-raised in another thread.
    client = (APIClient if api else Client)(HTTP_HOST="localhost", raise_request_exception=False)
    client.force_login(user)
    return client


def _messages(response) -> list[tuple[str, str]]:
    from django.contrib.messages import get_messages

    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


def _answer(response) -> str:
    text = response.content.decode(errors="replace")[:300] if response.status_code != 302 else ""
    return f"{response.status_code} {text}".strip()


def _edit_call(door: str, author, instruction_id: int, text: str):
    from django.urls import reverse

    client = _client(author, api=door == "api")

    def call() -> tuple[bool, str]:
        if door == "api":
            response = client.patch(f"/api/instructions/{instruction_id}/", {"template": text}, format="json")
            return response.status_code == 200, _answer(response)
        response = client.post(reverse("phrasing_edit", args=[instruction_id]), {"template": text})
        return response.status_code == 302, _answer(response)

    return call


def _decision_call(door: str, curator, instruction_id: int, revision: int, decision: str):
    from django.urls import reverse

    client = _client(curator, api=door == "api")
    reason = "" if decision == "approved" else REASON

    def call() -> tuple[bool, str]:
        if door == "queue":
            response = client.post(
                reverse("curation_review", args=[instruction_id]),
                {"decision": decision, "revision": revision, "reason": reason},
                HTTP_HX_REQUEST="true",
            )
            return response.status_code == 200, _answer(response)
        if door == "api":
            response = client.post(
                f"/api/instructions/{instruction_id}/review/",
                {"decision": decision, "revision": revision, "reason": reason},
                format="json",
            )
            return response.status_code == 200, _answer(response)
        if door == "bulk":
            response = client.post(
                reverse("curation_bulk"),
                {"decision": decision, "ids": [f"{instruction_id}:{revision}"], "reason": reason},
            )
        else:
            action = {"approved": "approve", "needs_edit": "request_edit", "rejected": "reject"}[decision]
            response = client.post(
                reverse("admin:collection_instruction_changelist"),
                {
                    "action": action,
                    "_selected_action": [instruction_id],
                    f"read_revision_{instruction_id}": revision,
                    "confirm": "yes",
                    "reason": reason,
                },
            )
        said = _messages(response)
        accepted = response.status_code == 302 and any(level == "success" for level, _ in said)
        return accepted, f"{response.status_code} {said}"

    return call


def _final_checks(summary: Summary, instruction, read: int, where: str, answers) -> None:
    from collection.models import Instruction

    instruction.refresh_from_db()
    for accepted, said in answers:
        if said.startswith(("500", "exception")):
            summary.violations.append(f"{where}: server error: {said}")
    if instruction.status != Instruction.Status.PENDING:
        if instruction.current_revision_id != read:
            summary.violations.append(
                f"{where}: {instruction.status} with text revision {instruction.current_revision_id}, "
                f"decided on {read}"
            )
        if instruction.reviewed_revision_id != instruction.current_revision_id:
            summary.violations.append(f"{where}: the decision does not name the current text")


def _edit_race(summary, task, author, curator, decision, door, edit_door, number, tag) -> None:
    instruction = _phrasing(task, author, number, tag)
    read = instruction.current_revision_id
    edited = f"Race {tag} {number}, edited: tell me if {{number}} is even, yes or no."
    answers = _run_at_once(
        [
            _edit_call(edit_door, author, instruction.id, edited),
            _decision_call(door, curator, instruction.id, read, decision),
        ]
    )
    (edit_ok, edit_said), (decision_ok, decision_said) = answers
    where = f"edit ({edit_door}) vs {decision} ({door}) #{instruction.id}"
    summary.races += 1
    _final_checks(summary, instruction, read, where, answers)
    if decision_ok and edit_ok and decision != "needs_edit":
        # Only a phrasing sent back may be edited after the decision (it goes back to the queue).
        summary.violations.append(f"{where}: both accepted; edit {edit_said}; decision {decision_said}")
    if not decision_ok and not edit_ok:
        summary.violations.append(f"{where}: both refused; edit {edit_said}; decision {decision_said}")
    if edit_ok and instruction.status != "pending":
        summary.violations.append(f"{where}: edit accepted but the phrasing is {instruction.status}")
    won = decision if decision_ok else "edited"
    summary.outcomes[f"{decision}: {won}" + (" then edited" if decision_ok and edit_ok else "")] += 1


def _mixed_race(summary, task, author, curators, chosen, number, tag) -> None:
    instruction = _phrasing(task, author, number, tag)
    read = instruction.current_revision_id
    calls = [
        _decision_call(door, curator, instruction.id, read, decision)
        for curator, (door, decision) in zip(curators, chosen, strict=True)
    ]
    answers = _run_at_once(calls)
    where = f"mixed decisions #{instruction.id}"
    summary.races += 1
    _final_checks(summary, instruction, read, where, answers)
    accepted = [f"{door}:{decision}" for (ok, _), (door, decision) in zip(answers, chosen, strict=True) if ok]
    if len(accepted) != 1:
        summary.violations.append(f"{where}: {len(accepted)} decisions accepted: {accepted}")
    else:
        summary.outcomes[f"mixed: {accepted[0].split(':')[1]}"] += 1
        if instruction.status != accepted[0].split(":")[1]:
            summary.violations.append(
                f"{where}: accepted {accepted[0]} but the phrasing is {instruction.status}"
            )


def main() -> None:
    """Run the matrix against the database in DATABASE_URL (already migrated) and print it as JSON."""
    import json
    import os

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    django.setup()
    # Jobs (embeddings) go to the filesystem broker under VAR_DIR, as from a web process; no worker runs.
    rounds, mixed_rounds = (int(n) for n in sys.argv[1:3])
    print(json.dumps(race_matrix(rounds=rounds, mixed_rounds=mixed_rounds, tag="sqlite")))


if __name__ == "__main__":
    main()

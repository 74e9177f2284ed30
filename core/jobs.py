"""One lifecycle for every background job: (planned ->) queued -> running -> succeeded / failed / cancelled.

A job kind is a concrete model that inherits `Job` and declares, once, what differs between kinds: a
`JobKind` as its `job` attribute (its Celery task and queue, its work, the errors that fail it with their own
message, whether people may cancel it and how it is retried). The task (`job_task()`), the admin actions, the
API's and the pages' cancel and retry (core/job_actions.py) all follow from that declaration. Everything else
is here, once: sending on commit through an outbox, the claim (which delivery may run a job), heartbeat and
progress, finishing, cancel and retry, the periodic outbox sweep, recovery when a worker starts, and handing a
job back when the database goes away. Every change of a job's status goes through this module. Scoring runs,
soft-prompt trainings, model checks and release exports (evaluation/models.py) are the kinds today.

Tasks are looked up by name in Celery's registry (`current_app.tasks`), never imported: services send jobs
and tasks call services, so importing each other would be a cycle. Each app's AppConfig.ready() imports its
tasks module, so the registry is full in the web process too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import ClassVar

from celery import current_app, shared_task
from celery.exceptions import Reject
from django.apps import apps
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections, models, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.functional import classproperty
from django.utils.module_loading import import_string

from core import worker_beats
from core.errors import ApplicationError

log = logging.getLogger(__name__)

DATABASE_ERRORS = (OperationalError, InterfaceError)
# Server states that mean the connection is gone (shut down by an admin or a crash, or still starting up),
# beside SQLSTATE class 08 (connection exceptions) and client-side failures, which carry no state at all.
CONNECTION_STATES = ("57P01", "57P02", "57P03")
# An error the database answered with (not a lost connection) may never go away; after this many retries the
# job fails with it, and a person can retry it.
ANSWERED_ERROR_RETRIES = 8


class JobStatus(models.TextChoices):
    # Saved but not sent: bulk work over its budget waits for an admin to start it (evaluation/runs/budget.py).
    PLANNED = "planned", "Planned"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
# What a person may retry; a job in any other state is refused with the reason.
RETRYABLE = (JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True)
class JobKind:
    """What one kind of job is, declared once as its model's `job` attribute. Its services are named by dotted
    path, because the model cannot import them (they import the model); they are imported when first used."""

    task: str  # the Celery task's name; the app's tasks module makes the task with job_task()
    queue: str  # the queue that task names (a kind with lanes sends some jobs elsewhere: Job.job_queue)
    noun: str  # in messages about its state: "Only a failed or cancelled run can be retried."
    work: str  # work(job, token) for a worker's delivery: finishes the job, or stops when heartbeat() says so
    failures: str  # a tuple of exception types that fail a job with their own message (others: with the type)
    # Reset by each claim, for progress that an attempt starts over (a training restarts from its seed).
    restart_fields: Mapping[str, object] = field(default_factory=dict)
    # What people may do (pages, the API and admin, through cancel() and retry() below).
    cancellable: bool = False
    retry: str = ""  # retry(job) -> the job queued again (the same row or a new one); blank: not retried
    # What they are told, where kinds differ. `label`: a row in admin's messages (default: the noun); the
    # pages' messages are formatted with `job` (after a retry, the job queued again); `retry_note` follows
    # admin's "Retry selected ..." in brackets.
    label: str = ""
    cancelled: str = "Cancelled."
    retried: str = "Queued again."
    retry_note: str = ""

    def service(self, name: str):
        """The callable or value a dotted path of this declaration names (work, failures, retry)."""
        return import_string(getattr(self, name))


class Job(models.Model):
    """The fields every job kind carries. A concrete kind declares itself in `job` (a JobKind)."""

    Status = JobStatus
    ACTIVE = ACTIVE
    job: ClassVar[JobKind]

    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    error = models.TextField(blank=True)
    # Claiming: a delivery may run the job only after a conditional update sets its own claim token.
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_by_task = models.CharField(max_length=100, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the broker accepted its job; empty: the sweep sends it (outbox).",
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @classproperty
    def job_task(cls) -> str:
        return cls.job.task

    @classproperty
    def job_noun(cls) -> str:
        return cls.job.noun

    @classproperty
    def restart_fields(cls) -> Mapping[str, object]:
        return cls.job.restart_fields

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def progress_text(self) -> str:
        """How far it has got, in words, for the status page; kinds that count their progress override it."""
        return ""

    @classmethod
    def job_queue(cls, pk: int) -> str | None:
        """The Celery queue this job is sent to; None: the one its task names. Kinds with lanes override it."""
        return None

    @classmethod
    def queue_counts(cls, jobs: models.QuerySet) -> dict[str, int]:
        """How many of `jobs` (rows of this kind) wait on each Celery queue, for the status page. Kinds whose
        job_queue depends on the row override it, in one query."""
        count = jobs.count()
        return {task_queue(cls): count} if count else {}


def job_constraints(prefix: str) -> list[models.CheckConstraint]:
    """The database's side of the lifecycle, for a kind's Meta.constraints: a valid status, and a reason for
    every failure. Named `<prefix>_status_valid` and `<prefix>_failure_has_reason`."""
    return [
        models.CheckConstraint(condition=Q(status__in=JobStatus.values), name=f"{prefix}_status_valid"),
        models.CheckConstraint(
            condition=~Q(status=JobStatus.FAILED) | ~Q(error=""), name=f"{prefix}_failure_has_reason"
        ),
    ]


def job_kinds() -> list[type[Job]]:
    return [model for model in apps.get_models() if issubclass(model, Job)]


def task_queue(kind: type[Job]) -> str:
    """The queue a kind's task names."""
    return kind.job.queue


def job_task(kind: type[Job]):
    """A kind's Celery task, as its declaration says: named and queued as declared, it takes the job's id and
    runs perform(). Made in the app's tasks module (`score_run = jobs.job_task(ScoringRun)`), where Celery's
    autodiscovery finds it."""

    @shared_task(bind=True, name=kind.job.task, queue=kind.job.queue, max_retries=None)
    def run_job(self, pk: int, resume_token: str | None = None) -> None:
        perform(self, kind, pk, resume_token=resume_token)

    return run_job


def this_process() -> str:
    """Who runs a job claimed outside a Celery worker: a management command running it in its own process
    (`score`, `train_softprompt`, `reproduce_study`), or a task run eagerly. Stored as the job's `worker`,
    so the status page names the command, its pid and its host rather than showing the job as nobody's."""
    argv = sys.argv or [""]
    program = os.path.basename(argv[0]) or "python"
    if program == "__main__.py":  # python -m django, python -m pytest
        program = "python -m " + os.path.basename(os.path.dirname(argv[0]))
    if program in ("manage.py", "django-admin", "python -m django") and len(argv) > 1:
        program = f"{program} {argv[1]}"
    return f"{program}, pid {os.getpid()} on host {socket.gethostname()}"


class DatabaseInterrupted(Exception):
    """The database went away while a job held its claim. `token` is that claim: the job's own retry passes it
    back to claim() to carry on, which a broker's redelivery of the same message cannot do."""

    def __init__(self, message: str, token: uuid.UUID) -> None:
        super().__init__(message)
        self.token = token


# --- Sending ---------------------------------------------------------------------------------------------


def send_on_commit(
    task_name: str,
    *args,
    what: str,
    countdown: int | None = None,
    queue: str | None = None,
    sent: Callable[[], object] | None = None,
    unreachable: Callable[[], object] | None = None,
) -> None:
    """Send the task `task_name` with `args` once the current transaction commits, so a worker never looks
    for a row that is not committed yet, and a broker that cannot be reached never fails the request that
    saved the work. `queue` overrides the task's own queue. `sent` runs once the broker has accepted the job. When the broker cannot be reached the
    failure is logged and `unreachable` runs: each caller says why nothing is lost."""

    def send() -> None:
        from kombu.exceptions import OperationalError as BrokerError

        options = {"queue": queue} if queue else {}
        try:
            current_app.tasks[task_name].apply_async(args=args, countdown=countdown, **options)
        except (BrokerError, OSError):
            log.warning("Could not reach the broker to send %s.", what, exc_info=True)
            if unreachable is not None:
                unreachable()
            return
        if sent is not None:
            sent()

    transaction.on_commit(send)


def enqueue(kind: type[Job], pk: int, *, countdown: int | None = None) -> None:
    """Send a job on commit, through the outbox: `sent_at` records that the broker took it; a job left
    without one (the broker was down) is sent by the sweep once the broker is back."""
    rows = kind.objects.filter(pk=pk)
    send_on_commit(
        kind.job_task,
        pk,
        what=f"{kind._meta.verbose_name} {pk}",
        countdown=countdown,
        queue=kind.job_queue(pk),
        sent=lambda: rows.filter(sent_at__isnull=True).update(sent_at=timezone.now()),
        unreachable=lambda: rows.update(sent_at=None),
    )


# --- Claim, heartbeat, finish ----------------------------------------------------------------------------


def _stale():
    return timezone.now() - timedelta(seconds=settings.JOB_LEASE_SECONDS)


def claim(kind: type[Job], pk: int, *, task_id: str, worker: str, resume_token=None) -> uuid.UUID | None:
    """Mark the job running under a new token and return it, or None when this delivery may not run it.

    A delivery may run the job when it is queued, when its holder stopped sending heartbeats (a killed
    worker), or when it is the holder's own retry after a database interruption (`resume_token` is the claim
    it held). A redelivery of a message whose worker is still running gets None: Redis redelivers an
    unacknowledged message after CELERY_VISIBILITY_TIMEOUT even to a live worker, and taking over would
    restart a long training every time. If that worker dies, the lease lapses and the sweep sends the job.

    `worker` names who runs it: the Celery worker's node name, or blank for this process (this_process())."""
    token = uuid.uuid4()
    now = timezone.now()
    claimable = Q(status=JobStatus.QUEUED) | Q(status=JobStatus.RUNNING, heartbeat_at__lt=_stale())
    if resume_token:
        claimable |= Q(status=JobStatus.RUNNING, claim_token=resume_token)
    claimed = kind.objects.filter(claimable, pk=pk).update(
        status=JobStatus.RUNNING,
        claim_token=token,
        claimed_by_task=task_id[:100],
        worker=(worker or this_process())[:200],
        heartbeat_at=now,
        attempts=F("attempts") + 1,
        started_at=Coalesce("started_at", Value(now)),
        error="",
        **kind.restart_fields,
    )
    return token if claimed else None


def _held(kind: type[Job], pk: int, token: uuid.UUID):
    return kind.objects.filter(pk=pk, claim_token=token, status=JobStatus.RUNNING)


def heartbeat(kind: type[Job], pk: int, token: uuid.UUID, **progress) -> bool:
    """Store progress with a fresh heartbeat; False when the job is no longer this claim's (cancelled, or
    taken over by another delivery): the caller stops."""
    worker_beats.beat()  # the worker is alive, and busy: for the status page
    return bool(_held(kind, pk, token).update(heartbeat_at=timezone.now(), **progress))


@contextlib.contextmanager
def heartbeating(kind: type[Job], pk: int, token: uuid.UUID) -> Iterator[None]:
    """Heartbeats from a thread of its own while the body runs, for work that cannot stop to send them: one
    long read in a read-only transaction (a release export), where an UPDATE on the same connection would
    fail. The thread has its own database connection, closed when it stops; it beats every third of the
    lease, so work shorter than that never beats."""
    done = threading.Event()

    def beat() -> None:
        try:
            while not done.wait(settings.JOB_LEASE_SECONDS / 3):
                try:
                    heartbeat(kind, pk, token)
                except DATABASE_ERRORS:
                    log.warning("%s %s: a heartbeat failed; the next one tries again.", kind.__name__, pk)
        finally:
            connections.close_all()

    thread = threading.Thread(target=beat, name=f"heartbeat-{kind.__name__}-{pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def holds(kind: type[Job], pk: int, token: uuid.UUID) -> bool:
    return _held(kind, pk, token).exists()


def lock_if_held(kind: type[Job], pk: int, token: uuid.UUID):
    """The job's row, locked for the current transaction, if this claim still holds it; else None. For a
    kind whose success writes more than its own row (the caller marks it succeeded in the same transaction)."""
    return _held(kind, pk, token).select_for_update().first()


def finish(kind: type[Job], pk: int, token: uuid.UUID, status: str, *, error: str = "", **fields) -> None:
    now = timezone.now()
    _held(kind, pk, token).update(
        status=status, error=error[:5000], finished_at=now, claim_token=None, **fields
    )


def continue_later(kind: type[Job], pk: int, token: uuid.UUID) -> bool:
    """Hand a job that works in chunks back to the queue for its next chunk, and send it again. Between
    chunks the worker is free: work waiting in a queue it asks first (a person's) goes before the next
    chunk. The next chunk's claim is the same attempt, so `attempts` still counts deliveries that started
    over. False when the claim is no longer held (cancelled, or taken over)."""
    handed_back = _held(kind, pk, token).update(
        status=JobStatus.QUEUED, claim_token=None, sent_at=None, attempts=F("attempts") - 1
    )
    if handed_back:
        enqueue(kind, pk)
    return bool(handed_back)


def is_running(kind: type[Job], pk: int) -> bool:
    return kind.objects.filter(pk=pk, status=JobStatus.RUNNING).exists()


# --- Executing -------------------------------------------------------------------------------------------


def failure_reason(
    kind: type[Job], exc: Exception, failures: tuple[type[Exception], ...] | None = None
) -> str:
    """What a job that raised `exc` fails with: the message of one of its kind's failures (or `failures`),
    else the exception's type and message."""
    failures = kind.job.service("failures") if failures is None else failures
    if isinstance(exc, failures):
        return str(exc)
    return f"Unexpected error ({type(exc).__name__}): {exc}"


def execute(
    kind: type[Job],
    pk: int,
    *,
    task_id: str,
    worker: str = "",
    resume_token=None,
    work: Callable[[Job, uuid.UUID], None] | None = None,
    failures: tuple[type[Exception], ...] | None = None,
):
    """Claim the job and run `work(job, token)` (default: its kind's), which finishes it (finish() or
    lock_if_held()) or stops when heartbeat() says the claim is gone. Returns the job as it is afterwards, or
    None when another delivery holds the claim. An exception among its kind's failures (or `failures`) fails
    the job with its message; any other, with its type too; a database error hands the job back and raises
    DatabaseInterrupted with the claim to resume. A command running a job in its own process passes its own
    `work` (the kind's, with progress reported to it)."""
    work = work or kind.job.service("work")
    failures = kind.job.service("failures") if failures is None else failures
    token = claim(kind, pk, task_id=task_id, worker=worker, resume_token=resume_token)
    if token is None:
        log.info(
            "%s %s is not claimable by %s (finished, cancelled or held elsewhere).",
            kind.__name__,
            pk,
            task_id,
        )
        return None
    job = kind.objects.get(pk=pk)
    try:
        work(job, token)
    except DATABASE_ERRORS as exc:
        release(kind, pk, token)
        raise DatabaseInterrupted(f"Database unavailable: {exc}", token) from exc
    except Exception as exc:
        if not isinstance(exc, failures):
            log.exception("%s %s failed unexpectedly.", kind.__name__, pk)
        finish(kind, pk, token, JobStatus.FAILED, error=failure_reason(kind, exc, failures))
    return kind.objects.get(pk=pk)


def perform(task, kind: type[Job], pk: int, *, resume_token: str | None, **execute_kwargs) -> None:
    """The body of a job kind's Celery task (job_task(); bind=True, max_retries=None): execute, retry with
    backoff while the database is away, and look again later when another live delivery holds the job."""
    try:
        job = execute(
            kind,
            pk,
            task_id=task.request.id or "eager",
            # No hostname: run eagerly, in this process (Celery's task_always_eager).
            worker=task.request.hostname or this_process(),
            resume_token=resume_token,
            **execute_kwargs,
        )
    except (DatabaseInterrupted, *DATABASE_ERRORS) as exc:
        _retry_on_database_error(task, exc, kind=kind, pk=pk, resume_token=resume_token)
        return
    if job is None and not task.request.is_eager and is_running(kind, pk):
        # A copy sent while its worker lives (Redis redelivers after CELERY_VISIBILITY_TIMEOUT; RabbitMQ at
        # once when a worker's connection drops, dead or not). Look again once the lease could have lapsed,
        # and take the job over then if its worker has died.
        raise task.retry(countdown=settings.JOB_LEASE_SECONDS + 1, kwargs={})


def _backoff(retries: int) -> int:
    return min(600, 10 * 2**retries)  # 10 s, 20 s, ... up to 10 minutes


def _retry_on_database_error(task, exc: Exception, *, kind, pk: int, resume_token: str | None) -> None:
    """The database failed under a job: mid-job (the job was handed back and DatabaseInterrupted carries its
    claim) or before the claim. Retry with backoff, for as long as the database cannot be reached; an error
    it answered with gets ANSWERED_ERROR_RETRIES, then fails the job."""
    cause = exc
    if isinstance(exc, DatabaseInterrupted):
        resume_token, cause = str(exc.token), exc.__cause__
    retries = task.request.retries
    if not connection_lost(cause) and retries >= ANSWERED_ERROR_RETRIES:
        fail_handed_back(kind, pk, resume_token, f"Database error after {retries + 1} attempts: {cause}")
        return
    try:
        raise task.retry(exc=exc, countdown=_backoff(retries), kwargs={"resume_token": resume_token})
    except Reject:
        mark_unsent(kind, pk)  # the retry never reached the broker: the outbox sweep takes over
        raise


# --- When the database goes away -------------------------------------------------------------------------


def connection_lost(exc: Exception) -> bool:
    """Whether a database error means the server cannot be reached (down, restarting, the network), which
    only waiting cures, rather than an error it answered with (a statement timeout, a full disk)."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    state = getattr(exc.__cause__, "sqlstate", None)
    return state is None or state.startswith("08") or state in CONNECTION_STATES


def release(kind: type[Job], pk: int, token: uuid.UUID) -> None:
    """Hand a job whose database went away back to the queue, for the task's retry. If the database is down
    too, the job stays held by this claim, which the retry resumes (should the retry be lost, the lease
    lapses for the sweep)."""
    try:
        _held(kind, pk, token).update(status=JobStatus.QUEUED, claim_token=None)
    except DATABASE_ERRORS:
        log.warning("Could not release %s %s; its lease will lapse.", kind._meta.verbose_name, pk)


def fail_handed_back(kind: type[Job], pk: int, token: str | None, error: str) -> None:
    """Fail a job that a database error keeps interrupting, if it is still the one this chain handed back."""
    ours = Q(status=JobStatus.QUEUED) | (
        Q(status=JobStatus.RUNNING, claim_token=token) if token else Q(pk__in=[])
    )
    kind.objects.filter(ours, pk=pk).update(
        status=JobStatus.FAILED, error=error[:5000], finished_at=timezone.now(), claim_token=None
    )


def mark_unsent(kind: type[Job], pk: int) -> None:
    """A job whose retry never reached the broker goes back to the outbox, for the sweep to send."""
    try:
        kind.objects.filter(pk=pk, status__in=ACTIVE).update(sent_at=None)
    except DATABASE_ERRORS:
        pass  # the database is down too: a running job's lease lapses and the sweep sends it all the same


# --- What people do: cancel, retry -----------------------------------------------------------------------


def cancel(job: Job) -> Job:
    """Cancel a planned, queued or running job of a kind people may cancel; a running one stops at its next
    heartbeat."""
    kind = type(job)
    if not kind.job.cancellable:
        raise ApplicationError(f"A {kind.job_noun} cannot be cancelled.")
    cancelled = kind.objects.filter(pk=job.pk, status__in=(JobStatus.PLANNED, *ACTIVE)).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now(), claim_token=None
    )
    job.refresh_from_db()
    if not cancelled:
        raise ApplicationError(
            f"Only a planned, queued or running {kind.job_noun} can be cancelled. This one is {job.get_status_display().lower()}."
        )
    return job


def retry(job: Job) -> Job:
    """Retry a failed or cancelled job as its kind declares: queued again as the same row (requeue(), work it
    kept is skipped), or as a new job with the failed one kept as the record. Returns the job queued."""
    kind = type(job)
    if not kind.job.retry:
        raise ApplicationError(f"A {kind.job_noun} cannot be retried.")
    return kind.job.service("retry")(job)


def ensure_retryable(job: Job) -> None:
    """Refuse to retry a job that has not failed or been cancelled, saying what it is."""
    if job.status not in RETRYABLE:
        raise _not_retryable(job)


def _not_retryable(job: Job) -> ApplicationError:
    return ApplicationError(
        f"Only a failed or cancelled {type(job).job_noun} can be retried; this one is {job.status}."
    )


def requeue(job: Job) -> Job:
    """Queue a failed or cancelled job again, as the same row: work it kept (scored cells) is skipped."""
    kind = type(job)
    retried = kind.objects.filter(pk=job.pk, status__in=RETRYABLE).update(
        status=JobStatus.QUEUED, error="", finished_at=None, claim_token=None, claimed_by_task=""
    )
    job.refresh_from_db()
    if not retried:
        raise _not_retryable(job)
    enqueue(kind, job.pk)
    return job


def start_planned(kind: type[Job], pks: list[int]) -> int:
    """Send planned jobs: queued now, and sent once the transaction commits (through the outbox)."""
    started = 0
    for pk in pks:
        # One conditional update each, so two admins starting the same plan send each job once.
        if kind.objects.filter(pk=pk, status=JobStatus.PLANNED).update(status=JobStatus.QUEUED, sent_at=None):
            enqueue(kind, pk)
            started += 1
    return started


def cancel_planned(kind: type[Job], pks: list[int]) -> int:
    """Cancel planned jobs without computing anything (a discarded plan). Returns how many."""
    return kind.objects.filter(pk__in=pks, status=JobStatus.PLANNED).update(
        status=JobStatus.CANCELLED, finished_at=timezone.now()
    )


# --- Sweep and recovery ----------------------------------------------------------------------------------


def to_sweep(kind: type[Job]) -> list[int]:
    """The outbox sweep's jobs: queued ones the broker never accepted (it was down when they were created)
    and running ones whose worker went silent. A job waiting in a healthy queue is left alone, so a long
    queue is not flooded with copies."""
    unsent_or_stalled = Q(status=JobStatus.QUEUED, sent_at__isnull=True) | Q(
        status=JobStatus.RUNNING, heartbeat_at__lt=_stale()
    )
    return list(kind.objects.filter(unsent_or_stalled).values_list("pk", flat=True))


def sweep() -> int:
    """The outbox sweep (every SWEEP_SECONDS, from the scheduler) over every job kind."""
    count = 0
    for kind in job_kinds():
        for pk in to_sweep(kind):
            enqueue(kind, pk)
            count += 1
    return count


def recover() -> int:
    """At worker start-up, send every active job of every kind to the broker again. Duplicates are harmless:
    only one delivery wins the claim. A running job with a fresh heartbeat is re-sent with a delay of one
    lease, so the copy can take over only if its holder died."""
    lease = settings.JOB_LEASE_SECONDS
    stale = _stale()
    count = 0
    for kind in job_kinds():
        for pk, status, beat in kind.objects.filter(status__in=ACTIVE).values_list(
            "pk", "status", "heartbeat_at"
        ):
            fresh = status == JobStatus.RUNNING and beat is not None and beat >= stale
            enqueue(kind, pk, countdown=lease + 1 if fresh else None)
            count += 1
    return count

from django.db import models


class WorkerPing(models.Model):
    """A round trip through the broker: the web app enqueues a ping, a worker answers it.

    The status page uses it to tell users whether a worker is running, which is the first thing to check
    when scoring does not start.
    """

    created_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"ping #{self.pk}"


class WorkerBeat(models.Model):
    """A Celery worker's last sign of life and what it is doing (core/worker_beats.py writes it).

    A worker running a long job cannot answer a ping (`--pool solo` runs one task at a time), so the status
    page reads these rows instead: a worker writes one when it starts, when it starts and ends a task, on
    Celery's own heartbeats while idle, and on every job heartbeat (each batch) while busy."""

    name = models.CharField(max_length=200, unique=True, help_text="The worker's node name (-n).")
    queues = models.CharField(
        max_length=500, blank=True, help_text="The queues it takes work from, in order."
    )
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField()
    task = models.CharField(max_length=200, blank=True, help_text="The task it is running; blank: idle.")
    task_args = models.CharField(max_length=200, blank=True)
    task_since = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True, help_text="When it shut down cleanly.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

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

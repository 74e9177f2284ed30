"""Celery tasks for the `default` queue: light work that takes ids and calls a service."""

from celery import shared_task
from django.db import OperationalError

from collection import similarity


@shared_task(
    name="collection.embed_revision",
    queue="default",
    autoretry_for=(OperationalError,),
    retry_backoff=10,
    max_retries=8,
)
def embed_revision(revision_ids: int | list[int]) -> None:
    """One revision's embedding, or a batch's (an upload, an import: collection.services.embeddings_batched)."""
    similarity.revisions_embed([revision_ids] if isinstance(revision_ids, int) else revision_ids)

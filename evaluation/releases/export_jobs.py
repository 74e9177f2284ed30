"""Release exports asked for from admin or the API: a ReleaseExport job a worker runs (core/jobs.py's
lifecycle), writing what `manage.py export_release` writes into RELEASES_DIR, and the written files served
back (docs/releases.md).

The arguments are checked when the export is asked for (export.release_arguments_check), so a wrong name,
version, license or benchmark is refused with its reason and nothing is queued; a name and version already
asked for are refused too. A release holds only what an anonymous visitor may see (approved phrasings, public
models), so anyone may list and download a finished one.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction

from collection.importers.base import ImportFailed
from core import jobs
from core.errors import ApplicationError, Conflict
from core.jobs import JobStatus
from evaluation.models import ReleaseExport
from evaluation.releases import layout, load
from evaluation.releases.export import (
    DEFAULT_LICENSE,
    ExportFailed,
    default_version,
    release_arguments_check,
    release_export,
)

# What fails an export with its own message (anything else: with its type too).
EXPORT_FAILURES = (ExportFailed,)


def release_export_request(
    *,
    benchmarks: list[str] | None = None,
    name: str = "phrasebench",
    version: str = "",
    license: str = DEFAULT_LICENSE,
    by=None,
) -> ReleaseExport:
    """Queue a release export (sent to a worker when the transaction commits). ExportFailed for arguments
    the export would refuse; Conflict when that name and version were asked for already."""
    version = version or default_version()
    chosen = release_arguments_check(benchmarks=benchmarks, name=name, version=version, license=license)
    export = ReleaseExport(
        name=name,
        version=version,
        benchmarks=[b.slug for b in chosen] if benchmarks else [],
        license=license,
        created_by=by if by is not None and by.is_authenticated else None,
    )
    if export.path.exists():
        raise Conflict(f"A release {export.directory} exists already; choose another name or version.")
    try:
        with transaction.atomic():
            export.save()
    except IntegrityError:
        raise Conflict(
            f"A release {export.directory} was asked for already; choose another name or version."
        ) from None
    jobs.enqueue(ReleaseExport, export.id)
    return export


def release_export_work(export: ReleaseExport, token: uuid.UUID) -> None:
    """A worker's delivery: write the release, then store its counts and data version and finish. The export
    reads in one read-only transaction, so heartbeats come from their own thread (jobs.heartbeating)."""
    with jobs.heartbeating(ReleaseExport, export.id, token):
        written = release_export(
            out_dir=Path(settings.RELEASES_DIR),
            benchmarks=export.benchmarks or None,
            name=export.name,
            version=export.version,
            license=export.license,
        )
    jobs.finish(
        ReleaseExport,
        export.id,
        token,
        JobStatus.SUCCEEDED,
        counts=written.counts,
        data_version=written.manifest["data_version"],
    )


def release_export_delete(export: ReleaseExport) -> None:
    """Delete a finished export (succeeded or failed): its directory in RELEASES_DIR, then its row, so its name
    and version may be asked for again. Conflict while it is queued or running: its worker may be writing the
    directory. The files go first, under the row's lock: if they cannot be removed, the row stays and says so
    (its page lists what is left)."""
    with transaction.atomic():
        locked = ReleaseExport.objects.select_for_update().filter(pk=export.pk).first()
        if locked is None:
            return  # deleted already
        if locked.is_active:
            raise Conflict(
                f"Release {locked.directory} is {locked.get_status_display().lower()}: it can be deleted once "
                "its worker has finished."
            )
        root = Path(settings.RELEASES_DIR).resolve()
        if locked.path.exists():
            # Never anything but a directory directly inside RELEASES_DIR (names are checked when asked for).
            if locked.path.resolve().parent != root or locked.path.is_symlink():
                raise ApplicationError(f"{locked.path} is not a release directory in {root}; not removed.")
            try:
                shutil.rmtree(locked.path)
            except OSError as exc:
                raise ApplicationError(
                    f"Release {locked.directory}'s files could not all be removed ({exc.strerror or exc}); "
                    "the release stays, and its page lists what is left."
                ) from exc
        locked.delete()


def release_files(export: ReleaseExport) -> list[dict]:
    """A finished release's files as SHA256SUMS lists them (load.checksums): path, bytes and SHA-256, in that
    file's order. Empty when it is not finished, or when its directory is gone from RELEASES_DIR or its
    SHA256SUMS is unreadable (moved, deleted or edited by hand); a listed file that is gone has no size."""
    if export.status != JobStatus.SUCCEEDED:
        return []
    try:
        listed = load.checksums(export.path)
    except ImportFailed:
        return []
    files = []
    for relative, digest in listed.items():
        found = export.path / relative
        files.append(
            {"path": relative, "bytes": found.stat().st_size if found.is_file() else None, "sha256": digest}
        )
    # The list itself, which lists no hash of its own.
    sums = export.path / layout.CHECKSUMS
    files.append({"path": layout.CHECKSUMS, "bytes": sums.stat().st_size, "sha256": None})
    return files


def release_file(export: ReleaseExport, relative: str) -> Path:
    """The path of one of a finished release's files (one release_files lists), or ApplicationError: never a
    path outside the release, whatever `relative` says."""
    listed = {f["path"]: f for f in release_files(export)}
    if relative not in listed or listed[relative]["bytes"] is None:
        raise ApplicationError(f"Release {export.directory} has no file {relative!r} on this server.")
    return export.path / relative

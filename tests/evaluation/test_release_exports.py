"""Dataset releases asked for from the API and from admin (evaluation/releases/export_jobs.py): who may ask,
what is refused before anything is queued, the job a worker runs (here inline; a real worker process in
test_a_real_worker_writes_the_release_the_api_serves), and the files served back with the hashes SHA256SUMS
gives. The release itself (its layout, loading and round trip) is tested in test_release.py."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import redis
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from collection.demo import load_demo
from core import jobs
from core.jobs import JobStatus
from evaluation.models import LanguageModel, ReleaseExport
from tests.workers import manage, process_env, running_worker, wait_for


@pytest.fixture
def releases(settings, tmp_path) -> Path:
    settings.RELEASES_DIR = tmp_path / "releases"
    return settings.RELEASES_DIR


@pytest.fixture
def demo(db):
    load_demo(generated_per_task=0)


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def ask(client: APIClient, capture, **body):
    with capture(execute=True):
        return client.post("/api/releases/", body, format="json")


def test_an_admin_asks_for_a_release_a_worker_writes_it_and_anyone_downloads_its_files(
    demo, releases, admin_user, tmp_path, django_capture_on_commit_callbacks
):
    answer = ask(
        client_for(admin_user),
        django_capture_on_commit_callbacks,
        benchmarks=["demo"],
        name="demo",
        version="1",
        license="cc-by-4.0",
    )
    assert answer.status_code == 202, answer.json()
    assert answer["Location"].endswith(f"/api/releases/{answer.json()['id']}/")
    export = ReleaseExport.objects.get()
    assert (export.status, export.directory, export.benchmarks) == (JobStatus.SUCCEEDED, "demo-1", ["demo"])
    assert export.created_by == admin_user and export.error == ""
    manifest = json.loads((releases / "demo-1" / "release.json").read_text(encoding="utf-8"))
    assert export.counts == manifest["counts"] and export.data_version == manifest["data_version"]
    assert manifest["license"] == "cc-by-4.0" and export.counts["phrasings"] > 0

    # Anyone: the list and the release with its files; each file downloads with the hash SHA256SUMS gives.
    anonymous = client_for()
    listed = anonymous.get("/api/releases/").json()
    assert [row["directory"] for row in listed["results"]] == ["demo-1"]
    detail = anonymous.get(f"/api/releases/{export.id}/").json()
    sums = dict(
        reversed(line.split("  ", 1))
        for line in (releases / "demo-1" / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    )
    files = {f["path"]: f for f in detail["files"]}
    assert set(files) == set(sums) | {"SHA256SUMS"}
    for path, digest in sums.items():
        # The URL ends in the file's name, which `curl -O` and `wget` save it as.
        assert files[path]["url"].endswith(f"/api/releases/{export.id}/files/{path}"), files[path]["url"]
        response = anonymous.get(files[path]["url"], HTTP_ACCEPT="application/octet-stream")
        assert response.status_code == 200, path
        assert response["Content-Disposition"] == f'attachment; filename="{path.rsplit("/", 1)[-1]}"'
        body = b"".join(response.streaming_content)
        assert hashlib.sha256(body).hexdigest() == digest == files[path]["sha256"], path
        assert len(body) == files[path]["bytes"]
        # The form with a trailing slash that the first releases listed is still served.
        assert anonymous.get(files[path]["url"] + "/").status_code == 200, path
    (tasks,) = [path for path in sums if path.startswith("tasks/")]
    downloaded = tmp_path / "tasks.parquet"
    downloaded.write_bytes(b"".join(anonymous.get(files[tasks]["url"]).streaming_content))
    assert pq.read_table(downloaded).num_rows == export.counts["tasks"]

    # The same data as the command writes: the data version hashes the data files alone.
    call_command("export_release", str(tmp_path / "cli"), "--benchmark", "demo", "--release-version", "1")
    written = json.loads((tmp_path / "cli" / "phrasebench-1" / "release.json").read_text(encoding="utf-8"))
    assert written["data_version"] == export.data_version


def test_only_admins_ask_and_only_listed_files_are_served(
    demo, releases, alice, carol, admin_user, django_capture_on_commit_callbacks
):
    for user in (None, alice, carol):
        answer = ask(client_for(user), django_capture_on_commit_callbacks, name="x", version="1")
        assert answer.status_code in (401, 403), user
    assert not ReleaseExport.objects.exists() and not releases.exists()

    ask(client_for(admin_user), django_capture_on_commit_callbacks, name="x", version="1")
    export = ReleaseExport.objects.get()
    anonymous = client_for()
    for path in ("../../core/settings.py", "release.json/../../x-1/README.md", "nothing.parquet"):
        url = reverse("releaseexport-file", args=[export.id, path])
        assert anonymous.get(url).status_code == 404, path
    assert anonymous.get("/api/releases/999999/").status_code == 404
    assert anonymous.get("/api/releases/abc/").status_code == 404


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"name": "a b", "version": "1"}, 400, "The release name 'a b' must be letters"),
        ({"version": "1/2"}, 400, "The release version '1/2' must be letters"),
        ({"version": "1", "license": "CC BY"}, 400, "is not a Hugging Face license id"),
        ({"version": "1", "benchmarks": ["nope"]}, 400, "No benchmark nope; known: demo."),
        ({"version": "1", "benchmarks": "demo"}, 400, "Expected a list"),
    ],
)
def test_bad_arguments_are_refused_with_their_reason_and_nothing_is_queued(
    demo, releases, admin_user, django_capture_on_commit_callbacks, body, status, message
):
    answer = ask(client_for(admin_user), django_capture_on_commit_callbacks, **body)
    assert answer.status_code == status
    assert message in json.dumps(answer.json())
    assert not ReleaseExport.objects.exists() and not releases.exists()


def test_a_name_and_version_asked_for_twice_are_refused_and_a_failed_export_retries_as_the_same_row(
    demo, releases, admin_user, django_capture_on_commit_callbacks
):
    admin = client_for(admin_user)
    assert ask(admin, django_capture_on_commit_callbacks, name="r", version="1").status_code == 202
    again = ask(admin, django_capture_on_commit_callbacks, name="r", version="1")
    assert again.status_code == 409 and "exists already" in again.json()["detail"]

    # The directory appears between the request and the worker's delivery (another export wrote it): the
    # export fails with the reason and leaves the directory alone; moved away, a retry writes it.
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert admin.post("/api/releases/", {"name": "r", "version": "2"}, format="json").status_code == 202
    (releases / "r-2").mkdir()
    (releases / "r-2" / "mine").write_text("kept", encoding="utf-8")
    with django_capture_on_commit_callbacks(execute=True):
        for callback in queued:
            callback()
    failed = ReleaseExport.objects.get(version="2")
    assert failed.status == JobStatus.FAILED and "exists already" in failed.error
    assert (releases / "r-2" / "mine").read_text(encoding="utf-8") == "kept"
    assert client_for().get(f"/api/releases/{failed.id}/").status_code == 404  # only admins see failures
    assert admin.get(f"/api/releases/{failed.id}/").json()["files"] == []

    (releases / "r-2" / "mine").unlink()
    (releases / "r-2").rmdir()
    with django_capture_on_commit_callbacks(execute=True):
        retried = jobs.retry(failed)
    retried.refresh_from_db()
    assert retried.id == failed.id and retried.status == JobStatus.SUCCEEDED
    assert (releases / "r-2" / "release.json").is_file()


def test_admin_adds_a_release_export_through_the_same_checks(
    demo, releases, admin_user, client, django_capture_on_commit_callbacks
):
    admin_user.is_staff = True  # Django admin lets staff in; the admin group gives the permissions
    admin_user.save()
    client.force_login(admin_user)
    url = reverse("admin:evaluation_releaseexport_add")
    page = client.get(url)
    assert page.status_code == 200 and b"benchmark_choices" in page.content
    refused = client.post(url, {"name": "demo", "version": "", "license": "not a licence"})
    assert refused.status_code == 200 and b"is not a Hugging Face license id" in refused.content
    assert not ReleaseExport.objects.exists()

    from collection.models import Benchmark

    demo_id = Benchmark.objects.get(slug="demo").id
    with django_capture_on_commit_callbacks(execute=True):
        added = client.post(
            url, {"name": "demo", "version": "", "license": "mit", "benchmark_choices": [demo_id]}
        )
    assert added.status_code == 302, added.content[-2000:]
    export = ReleaseExport.objects.get()
    assert export.status == JobStatus.SUCCEEDED and export.benchmarks == ["demo"]
    assert export.version.endswith("Z") and (releases / export.directory / "README.md").is_file()
    assert client.get(reverse("admin:evaluation_releaseexport_change", args=[export.id])).status_code == 200


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_heartbeats_come_from_their_own_thread_while_the_work_holds_a_read_only_transaction(settings):
    settings.JOB_LEASE_SECONDS = 0.3
    export = ReleaseExport.objects.create(name="hb", version="1", license="other")
    token = jobs.claim(ReleaseExport, export.id, task_id="t", worker="w")
    first = ReleaseExport.objects.get(id=export.id).heartbeat_at
    with jobs.heartbeating(ReleaseExport, export.id, token):
        wait_for(
            lambda: ReleaseExport.objects.get(id=export.id).heartbeat_at > first,
            timeout=10,
            what="a heartbeat from the thread",
        )
    after = ReleaseExport.objects.get(id=export.id).heartbeat_at
    assert timezone.now() - after < timedelta(seconds=10)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_writes_the_release_the_api_serves(tmp_path, settings):
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    redis.Redis.from_url(redis_url).flushdb()
    load_demo(generated_per_task=0)
    settings.RELEASES_DIR = tmp_path / "releases"
    env = process_env(
        CELERY_BROKER_URL=redis_url, VAR_DIR=str(tmp_path), RELEASES_DIR=str(settings.RELEASES_DIR)
    )
    log = tmp_path / "worker.log"
    with running_worker(env, queues="default", log=log):
        # Asked for from another process: in this one Celery runs tasks inline.
        manage(
            env,
            "shell",
            "--no-imports",
            "-c",
            "from evaluation.releases import export_jobs; "
            "export_jobs.release_export_request(benchmarks=['demo'], name='w', version='1')",
        )

        def finished() -> bool:
            export = ReleaseExport.objects.filter(name="w").first()
            return export is not None and export.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)

        wait_for(finished, timeout=120, what="the worker's export", log=log)
    export = ReleaseExport.objects.get(name="w")
    assert export.status == JobStatus.SUCCEEDED, export.error
    assert export.worker.startswith("test-") and export.attempts == 1
    detail = client_for().get(f"/api/releases/{export.id}/").json()
    assert {f["path"].split("/")[0] for f in detail["files"]} >= {"tasks", "phrasings", "README.md"}
    assert not LanguageModel.objects.exists()  # nothing else changed


def test_the_releases_pages_list_show_and_for_admins_ask(
    demo, releases, admin_user, alice, client, django_capture_on_commit_callbacks
):
    url = reverse("release_list")
    assert "No releases yet." in client.get(url).content.decode()
    assert client.post(url, {"name": "x"}).status_code == 403
    client.force_login(alice)
    page = client.get(url).content.decode()
    assert "Ask for a release" not in page
    assert client.post(url, {"name": "x"}).status_code == 403
    assert not ReleaseExport.objects.exists()

    client.force_login(admin_user)
    assert "Ask for a release" in client.get(url).content.decode()
    refused = client.post(url, {"name": "x", "version": "1", "license": "CC BY"})
    assert refused.status_code == 400 and "is not a Hugging Face license id" in refused.content.decode()
    assert 'value="CC BY"' in refused.content.decode()  # what was typed is kept
    assert not ReleaseExport.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        asked = client.post(url, {"benchmarks": ["demo"], "name": "site", "version": "1", "license": "mit"})
    export = ReleaseExport.objects.get()
    assert asked.status_code == 302 and asked["Location"] == reverse("release_detail", args=[export.id])
    assert export.status == JobStatus.SUCCEEDED

    client.logout()
    listed = client.get(url).content.decode()
    assert "site-1" in listed and f"{export.counts['phrasings']}" in listed
    shown = client.get(asked["Location"]).content.decode()
    sums = (releases / "site-1" / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    for line in sums:
        digest, path = line.split("  ", 1)
        assert reverse("releaseexport-file", args=[export.id, path]) in shown and digest[:16] in shown
    assert 'data_files="site-1/predictions/*.parquet"' in shown
    assert client.get(reverse("release_detail", args=["0"])).status_code == 404


def test_a_release_whose_files_were_removed_by_hand_says_so_and_serves_nothing(
    demo, releases, admin_user, client, django_capture_on_commit_callbacks
):
    ask(client_for(admin_user), django_capture_on_commit_callbacks, name="gone", version="1")
    export = ReleaseExport.objects.get()
    (releases / "gone-1" / "release.json").unlink()
    detail = client_for().get(f"/api/releases/{export.id}/").json()
    assert {f["path"]: f["bytes"] for f in detail["files"]}["release.json"] is None
    assert (
        client_for().get(reverse("releaseexport-file", args=[export.id, "release.json"])).status_code == 404
    )
    assert "gone from this server" in client.get(reverse("release_detail", args=[export.id])).content.decode()

    shutil.rmtree(releases / "gone-1")
    assert client_for().get(f"/api/releases/{export.id}/").json()["files"] == []
    page = client.get(reverse("release_detail", args=[export.id])).content.decode()
    assert "no longer on this server" in page


def test_an_admin_deletes_a_finished_release_and_its_files_but_not_one_being_written(
    demo, releases, admin_user, alice, django_capture_on_commit_callbacks
):
    admin = client_for(admin_user)
    written = ask(admin, django_capture_on_commit_callbacks, name="old", version="1").json()
    assert (releases / "old-1" / "release.json").is_file()

    # Others may not; a queued or running export's worker may be writing its directory.
    assert client_for(alice).delete(f"/api/releases/{written['id']}/").status_code == 403
    assert client_for().delete(f"/api/releases/{written['id']}/").status_code == 403
    with django_capture_on_commit_callbacks(execute=False):
        queued = admin.post("/api/releases/", {"name": "busy", "version": "1"}, format="json").json()
    for status in (JobStatus.QUEUED, JobStatus.RUNNING):
        ReleaseExport.objects.filter(id=queued["id"]).update(status=status)
        refused = admin.delete(f"/api/releases/{queued['id']}/")
        assert refused.status_code == 409 and "once its worker has finished" in refused.json()["detail"]
    assert ReleaseExport.objects.filter(id=queued["id"]).exists()

    assert admin.delete(f"/api/releases/{written['id']}/").status_code == 204
    assert not (releases / "old-1").exists() and not ReleaseExport.objects.filter(id=written["id"]).exists()
    assert admin.get(f"/api/releases/{written['id']}/").status_code == 404
    assert (releases / "busy-1").exists() is False  # nothing else touched (it was never written)
    # Its name and version are free again.
    assert ask(admin, django_capture_on_commit_callbacks, name="old", version="1").status_code == 202


def test_a_release_directory_outside_releases_dir_is_never_removed(demo, releases, tmp_path):
    from evaluation.releases import export_jobs

    outside = tmp_path / "elsewhere"
    (outside / "kept").mkdir(parents=True)
    releases.mkdir(parents=True, exist_ok=True)
    (releases / "link-1").symlink_to(outside, target_is_directory=True)
    export = ReleaseExport.objects.create(
        name="link", version="1", license="other", status=JobStatus.SUCCEEDED
    )
    with pytest.raises(Exception, match="not a release directory"):
        export_jobs.release_export_delete(export)
    assert (outside / "kept").is_dir() and ReleaseExport.objects.filter(id=export.id).exists()


def test_the_release_page_and_admin_delete_through_the_same_rule(
    demo, releases, admin_user, alice, client, django_capture_on_commit_callbacks
):
    ask(client_for(admin_user), django_capture_on_commit_callbacks, name="page", version="1")
    ask(client_for(admin_user), django_capture_on_commit_callbacks, name="admin", version="1")
    on_page, in_admin = ReleaseExport.objects.get(name="page"), ReleaseExport.objects.get(name="admin")
    url = reverse("release_detail", args=[on_page.id])

    assert "Delete this release" not in client.get(url).content.decode()
    assert client.post(url, {"confirm": "yes"}).status_code == 403
    client.force_login(alice)
    assert client.post(url, {"confirm": "yes"}).status_code == 403
    client.force_login(admin_user)
    assert "Delete this release" in client.get(url).content.decode()
    unconfirmed = client.post(url, {})
    assert unconfirmed.status_code == 400 and "Tick the box" in unconfirmed.content.decode()
    assert (releases / "page-1").is_dir()
    deleted = client.post(url, {"confirm": "yes"}, follow=True)
    assert deleted.redirect_chain[-1][0] == reverse("release_list")
    assert "Release page-1 and its files were deleted." in deleted.content.decode()
    assert not (releases / "page-1").exists() and not ReleaseExport.objects.filter(id=on_page.id).exists()

    admin_user.is_staff = True
    admin_user.save()
    change = reverse("admin:evaluation_releaseexport_delete", args=[in_admin.id])
    ReleaseExport.objects.filter(id=in_admin.id).update(status=JobStatus.RUNNING)
    assert client.get(change).status_code == 403  # being written
    ReleaseExport.objects.filter(id=in_admin.id).update(status=JobStatus.SUCCEEDED)
    assert client.post(change, {"post": "yes"}).status_code == 302
    assert not (releases / "admin-1").exists() and not ReleaseExport.objects.exists()


def test_a_refused_deletion_is_a_message_in_admin_and_an_error_in_the_api_never_a_500(
    demo, releases, admin_user, client, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    from django.contrib.admin.models import LogEntry

    ask(client_for(admin_user), django_capture_on_commit_callbacks, name="stuck", version="1")
    export = ReleaseExport.objects.get(name="stuck")
    admin_user.is_staff = True
    admin_user.save()
    client.force_login(admin_user)

    # Files that cannot be removed (a read-only mount, say): the row stays and says why, on every surface.
    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("evaluation.releases.export_jobs.shutil.rmtree", refuse)
    delete = reverse("admin:evaluation_releaseexport_delete", args=[export.id])
    answer = client.post(delete, {"post": "yes"}, follow=True)
    assert answer.status_code == 200
    assert answer.redirect_chain[-1][0] == reverse("admin:evaluation_releaseexport_change", args=[export.id])
    assert "could not all be removed (Permission denied)" in answer.content.decode()
    assert ReleaseExport.objects.filter(id=export.id).exists() and not LogEntry.objects.exists()
    api = client_for(admin_user).delete(f"/api/releases/{export.id}/")
    assert api.status_code == 400 and "could not all be removed" in api.json()["detail"]
    page = client.post(reverse("release_detail", args=[export.id]), {"confirm": "yes"})
    assert page.status_code == 400 and "could not all be removed" in page.content.decode()
    monkeypatch.undo()

    # A directory that is a link out of RELEASES_DIR is never followed, in admin either.
    outside = tmp_path / "elsewhere"
    (outside / "kept").mkdir(parents=True)
    shutil.rmtree(releases / "stuck-1")
    (releases / "stuck-1").symlink_to(outside, target_is_directory=True)
    answer = client.post(delete, {"post": "yes"}, follow=True)
    assert answer.status_code == 200 and "is not a release directory" in answer.content.decode()
    assert (outside / "kept").is_dir() and ReleaseExport.objects.filter(id=export.id).exists()

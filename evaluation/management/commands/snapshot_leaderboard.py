from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from collection.models import Benchmark
from core.errors import ApplicationError
from core.management.base import BaseCommand
from evaluation.api_snapshots import snapshot_freeze
from evaluation.leaderboards import snapshots


class Command(BaseCommand):
    help = (
        "Freeze a benchmark's leaderboard (one view of it) as a citable snapshot: the leaderboard API's answer "
        "kept under a permanent id, /snapshots/<id>/. Prints the id; an unchanged view prints the snapshot "
        "already made."
    )

    def add_arguments(self, parser):
        parser.add_argument("benchmark", help="The benchmark's slug, e.g. mmlu.")
        parser.add_argument("--set", default="all", help="Phrasing set (default all).")
        parser.add_argument("--kind", default="", help="Task kind (default every kind).")
        parser.add_argument("--sort", default="avgp", help="The figure to sort and rank by (default avgp).")
        parser.add_argument("--dir", default="desc", choices=["asc", "desc"], help="Sort direction.")
        parser.add_argument(
            "--partial", action="store_true", help="Also list the rows with partial coverage."
        )
        parser.add_argument("--title", default="", help="A title shown with the citation.")
        parser.add_argument("--note", default="", help="A note shown on the snapshot's page.")
        parser.add_argument("--by", default="", help="The username to record as its author (default none).")

    def handle(self, *args, **opts):
        benchmark = Benchmark.objects.filter(slug=opts["benchmark"]).first()
        if benchmark is None:
            raise CommandError(f"There is no benchmark {opts['benchmark']!r}.")
        by = None
        if opts["by"]:
            by = get_user_model().objects.filter(username=opts["by"]).first()
            if by is None:
                raise CommandError(f"There is no user {opts['by']!r}.")
        params = {key: opts[key] for key in ("set", "kind", "sort", "dir")} | {"partial": opts["partial"]}
        try:
            view = snapshots.view_from_params(benchmark, params)
            snapshot, created = snapshot_freeze(
                benchmark=benchmark, view=view, by=by, title=opts["title"], note=opts["note"]
            )
        except ApplicationError as exc:
            raise CommandError(str(exc)) from exc
        said = "Frozen as" if created else "Unchanged since"
        self.stdout.write(
            f"{said} snapshot {snapshot.public_id}: {snapshot.get_absolute_url()} "
            f"(SHA-256 {snapshot.sha256}, {benchmark.slug}, {snapshots.api_query(snapshot)})"
        )

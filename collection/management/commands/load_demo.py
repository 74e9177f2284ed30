from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from collection.demo import GENERATED_PER_TASK, load_demo
from collection.management.commands._report import run_import
from core import roles, services
from core.management.base import BaseCommand

# Local demo only (bin/run): one account per role, so a newcomer can try authoring and curation at once.
DEMO_PASSWORD = "phrasebench-demo"
DEMO_ACCOUNTS = {"demo-author": roles.AUTHOR, "demo-curator": roles.CURATOR, "demo-admin": roles.ADMIN}


class Command(BaseCommand):
    help = "Create the demo benchmark (generated tasks and phrasings). Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument(
            "--generated",
            type=int,
            default=0,
            metavar="N",
            help=f"Also approve N phrasings per task from the phrasing generator (bin/run: {GENERATED_PER_TASK}).",
        )
        parser.add_argument(
            "--accounts",
            action="store_true",
            help=f"Also create demo accounts {', '.join(DEMO_ACCOUNTS)} with password {DEMO_PASSWORD!r} "
            "(for a local demo; never on a server others can reach).",
        )

    def handle(self, *args, accounts: bool = False, generated: int = 0, **options):
        if generated < 0:
            raise CommandError("--generated: give zero or more.")
        run_import(self, "Demo benchmark", load_demo, generated_per_task=generated)
        if accounts:
            User = get_user_model()
            for username, role in DEMO_ACCOUNTS.items():
                user, created = User.objects.get_or_create(username=username)
                if created:
                    user.set_password(DEMO_PASSWORD)
                    user.save()
                services.user_role_set(user=user, role=role)
            self.stdout.write(
                f"Demo accounts ({DEMO_PASSWORD!r}): "
                + ", ".join(f"{u} ({r})" for u, r in DEMO_ACCOUNTS.items())
            )

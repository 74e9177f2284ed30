"""Give a user a role: `python manage.py set_role alice curator` (author, curator or admin)."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from core import roles, services
from core.errors import ApplicationError
from core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Give a user one role (author, curator or admin); curators and admins get Django admin access."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("role", choices=roles.ROLES)

    def handle(self, *args, username: str, role: str, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        try:
            services.user_role_set(user=user, role=role)
        except ApplicationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{username} is now {role}.")

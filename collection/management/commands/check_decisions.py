"""Report phrasings that stand decided on a text other than the one reviewed (exit status 1 if any)."""

from django.core.management.base import CommandError

from collection.selectors import decided_on_another_text
from core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "List phrasings whose current text is not the one their review decision was taken on (say, an "
        "approved phrasing whose text was swapped by an edit that raced the approval). Exits 1 if any."
    )

    def handle(self, *args, **options):
        found = list(decided_on_another_text())
        for instruction in found:
            reviewed = instruction.reviewed_revision
            decided_on = f"revision {reviewed.number}" if reviewed else "an earlier revision"
            by = f" by {instruction.reviewer.username}" if instruction.reviewer else ""
            self.stdout.write(
                f"Phrasing #{instruction.id} ({instruction.task}) is {instruction.get_status_display().lower()}"
                f"{by} on {instruction.reviewed_at:%Y-%m-%d %H:%M} on {decided_on}, but its current text is "
                f"revision {instruction.current_revision.number}, written "
                f"{instruction.current_revision.created_at:%Y-%m-%d %H:%M}."
            )
        if found:
            raise CommandError(
                f"{len(found)} phrasing(s) stand decided on a text nobody reviewed. Retire approved ones (admin "
                "or the API) and have the current text submitted as a new phrasing."
            )
        self.stdout.write(self.style.SUCCESS("Every decided phrasing's current text is the one reviewed."))

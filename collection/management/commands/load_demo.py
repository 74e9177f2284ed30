from django.core.management.base import BaseCommand

from collection.demo import load_demo
from collection.management.commands._report import run_import


class Command(BaseCommand):
    help = "Create the demo benchmark (generated tasks and phrasings). Safe to run again."

    def handle(self, *args, **options):
        run_import(self, "Demo benchmark", load_demo)

from collection.importers.tasks import import_hf_dataset
from collection.management.commands._report import run_import
from core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Import a multiple-choice dataset from the Hugging Face hub by name (needs network access), "
        "e.g. `import_hf_dataset cais/mmlu --config anatomy --split test --benchmark mmlu-hf --task anatomy`."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--config", default=None)
        parser.add_argument("--split", default="test", help="The dataset split to download")
        parser.add_argument("--as-split", default="eval", choices=["eval", "train"], help="Our split for it")
        parser.add_argument("--benchmark", required=True)
        parser.add_argument("--task", required=True)
        parser.add_argument("--question-field", default="question")
        parser.add_argument("--options-field", default="choices")
        parser.add_argument("--answer-field", default="answer")
        parser.add_argument("--extra-field", action="append", default=[], help="More input fields to keep")

    def handle(self, *args, **o):
        run_import(
            self,
            f"Hugging Face import of {o['name']}",
            import_hf_dataset,
            o["name"],
            config=o["config"],
            hf_split=o["split"],
            benchmark_slug=o["benchmark"],
            task=o["task"],
            question_field=o["question_field"],
            options_field=o["options_field"],
            answer_field=o["answer_field"],
            extra_fields=o["extra_field"],
            split=o["as_split"],
        )

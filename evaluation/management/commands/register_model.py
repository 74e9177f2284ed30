from django.core.management.base import CommandError

from collection.models import Benchmark, Collection
from core.errors import ApplicationError
from core.management.base import BaseCommand
from evaluation.models import Dtype, ModelFamily, PromptFormat, Truncation
from evaluation.runs import budget, registry
from evaluation.runs.registry import ModelRegistration


class Command(BaseCommand):
    help = (
        "Register a model (hub id or local path), check here that it loads, and queue the scoring of every "
        "approved phrasing on it. A command runs where the model is, so it checks in the foreground; --queue "
        "leaves the check to a GPU worker (for a model only the workers can reach)."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Short name (a slug), e.g. flan-t5-base.")
        parser.add_argument("source", help="Hugging Face hub id or local directory.")
        parser.add_argument("--family", required=True, choices=ModelFamily.values)
        parser.add_argument(
            "--revision", default=ModelRegistration.revision, help="Hub branch, tag or commit."
        )
        parser.add_argument("--dtype", default=ModelRegistration.dtype, choices=Dtype.values)
        parser.add_argument(
            "--prompt-format", default=ModelRegistration.prompt_format, choices=PromptFormat.values
        )
        parser.add_argument(
            "--tuned-on",
            nargs="*",
            default=[],
            metavar="COLLECTION",
            help="Slugs of the instruction collections it was tuned on (its observed phrasings).",
        )
        parser.add_argument("--batch-size", type=int, default=ModelRegistration.batch_size)
        parser.add_argument(
            "--max-input-tokens",
            type=int,
            default=ModelRegistration.max_input_tokens,
            metavar="N",
            help="Cut longer prompts to N tokens (default: the model's own length, as its tokenizer or config "
            "states it; none if neither does).",
        )
        parser.add_argument(
            "--truncation",
            default=ModelRegistration.truncation,
            choices=Truncation.values,
            help="What a longer prompt loses: its start (keep_end, the default, as lm-evaluation-harness) or "
            "its end (cut_end, the study's).",
        )
        parser.add_argument(
            "--benchmark",
            action="append",
            default=[],
            metavar="SLUG",
            help="Score it on this benchmark only (repeat for several); default: every benchmark.",
        )
        parser.add_argument("--description", default=ModelRegistration.description)
        parser.add_argument("--no-score", action="store_true", help="Register without queueing scoring runs.")
        parser.add_argument(
            "--queue",
            action="store_true",
            help="Leave the check to a GPU worker instead of loading the model here; its scoring is queued once "
            "the worker has loaded it.",
        )

    def handle(self, *args, **opts):
        collections = list(Collection.objects.filter(slug__in=opts["tuned_on"]))
        unknown = set(opts["tuned_on"]) - {c.slug for c in collections}
        if unknown:
            known = ", ".join(Collection.objects.values_list("slug", flat=True))
            raise CommandError(f"Unknown collection(s): {', '.join(sorted(unknown))}. Known: {known}.")
        benchmarks = list(Benchmark.objects.filter(slug__in=opts["benchmark"]))
        unknown = set(opts["benchmark"]) - {b.slug for b in benchmarks}
        if unknown:
            known = ", ".join(Benchmark.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(f"Unknown benchmark(s): {', '.join(sorted(unknown))}. Known: {known}.")
        try:
            model = registry.language_model_register(
                name=opts["name"],
                source=opts["source"],
                family=opts["family"],
                revision=opts["revision"],
                dtype=opts["dtype"],
                prompt_format=opts["prompt_format"],
                tuned_on=collections,
                batch_size=opts["batch_size"],
                max_input_tokens=opts["max_input_tokens"],
                truncation=opts["truncation"],
                benchmarks=benchmarks,
                description=opts["description"],
                score=not opts["no_score"],
                check_now=not opts["queue"],
            )
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        if model.state == model.State.CHECKING:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Registered {model.name}: a GPU worker will check that it loads"
                    + (
                        ", and queue nothing (--no-score)."
                        if opts["no_score"]
                        else ", then queue its scoring."
                    )
                )
            )
            return
        if model.state == model.State.FAILED:
            raise CommandError(
                f"Registered {model.name}, but it does not load, so nothing is scored on it: {model.check_error}\n"
                "Fix the cause, then retry its check from the model page, the API or admin."
            )
        runs = list(model.variants.get().runs.select_related("plan"))
        # --no-score queues nothing on purpose: "every cell is already scored" would say otherwise.
        done = "Nothing queued (--no-score)." if opts["no_score"] else budget.bulk_summary(runs)
        self.stdout.write(self.style.SUCCESS(f"Registered {model.name}: it loads. {done}"))
        if runs and runs[0].plan is not None:
            for line in budget.plan_text(runs[0].plan):
                self.stdout.write(line)

from django.core.management.base import CommandError

from core.management.base import BaseCommand
from evaluation.models import LanguageModel
from evaluation.robustness import calibration
from evaluation.robustness.outcome import calibration_outcome


class Command(BaseCommand):
    help = (
        "Batch-calibrate a model's base scores on the held-out phrasings (no training, no model loaded): its "
        "calibrated variant joins the leaderboard's held-out views beside the soft prompts. Prints the "
        "improvement over the base model on the held-out unobserved phrasings, with its paired bootstrap CI."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, help="The registered model's name.")

    def handle(self, *args, **opts):
        model = LanguageModel.objects.filter(name=opts["model"]).first()
        if model is None:
            raise CommandError(f"No model named '{opts['model']}'.")
        report = calibration.variant_calibrate(model=model)
        for task, reason in sorted(report.skipped.items()):
            self.stdout.write(f"{task}: skipped, {reason}.")
        for task, count in sorted(report.waiting.items()):
            self.stdout.write(f"{task}: {count} held-out phrasing(s) not fully scored by the base model yet.")
        if not report.phrasings:
            raise CommandError(
                f"Nothing to calibrate: the base model of {model.name} has scored no held-out phrasing on its "
                f"whole evaluation sample. Score it first (manage.py score --model {model.name})."
            )
        tasks = ", ".join(f"{task} {count}" for task, count in sorted(report.calibrated.items()))
        self.stdout.write(f"Calibrated {report.phrasings} held-out phrasings ({tasks}).")
        outcome = calibration_outcome(model)
        if outcome is None:
            self.stdout.write("No held-out unobserved phrasing among them: no improvement to report.")
            return
        low, high = outcome.macro.ci
        self.stdout.write(
            f"Held-out unobserved: base {100 * outcome.base_accuracy:.1f}, calibrated "
            f"{100 * (outcome.base_accuracy + outcome.macro.difference):.1f}, "
            f"Δ {100 * outcome.macro.difference:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}] "
            f"({outcome.macro.phrasings} phrasings; 95% paired bootstrap CI, macro over tasks)."
        )
        self.stdout.write(self.style.SUCCESS("Done."))

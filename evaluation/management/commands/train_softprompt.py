import uuid
from dataclasses import asdict

from django.core.management.base import CommandError
from tqdm import tqdm

from core.env import device_arg
from core.errors import ApplicationError
from core.jobs import JobStatus
from core.management.base import BaseCommand
from evaluation.ml.config import OBJECTIVES, AlignConfig, ConfigError
from evaluation.models import LanguageModel, RunTrigger
from evaluation.robustness import softprompts
from evaluation.runs import scoring


class Command(BaseCommand):
    help = (
        "Train a model's alignment soft prompt in the foreground (held-out phrasings are never trained on), "
        "then score it and the base model on the held-out phrasings. Lambdas at 0 give the ablations."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True, help="The registered model's name.")
        defaults = AlignConfig()
        parser.add_argument(
            "--tokens", type=int, default=defaults.num_virtual_tokens, help="Virtual tokens k."
        )
        parser.add_argument("--init", choices=["phrasing", "vocab"], default=defaults.init)
        parser.add_argument("--lambda-kl", type=float, default=defaults.lambda_kl)
        parser.add_argument("--lambda-rep", type=float, default=defaults.lambda_rep)
        parser.add_argument("--lr", type=float, default=defaults.learning_rate)
        parser.add_argument("--steps", type=int, default=defaults.steps)
        parser.add_argument(
            "--instances", type=int, default=defaults.instances_per_batch, help="Instances per batch."
        )
        parser.add_argument("--paraphrases", type=int, default=defaults.paraphrases)
        parser.add_argument("--accumulate", type=int, default=defaults.grad_accumulation)
        parser.add_argument("--seed", type=int, default=defaults.seed)
        parser.add_argument(
            "--objective",
            choices=list(OBJECTIVES),
            default=defaults.objective,
            help="align: CE + lambdas (the study's); consistency: swarm distillation, no labels.",
        )
        parser.add_argument(
            "--patience",
            type=int,
            default=defaults.patience,
            help="Consistency only: stop after this many checks without higher agreement between phrasings on "
            "unlabeled held-out training instances, keeping the best prompt (0: never stop early).",
        )
        parser.add_argument(
            "--eval-every", type=int, default=defaults.eval_every, help="Steps between checks."
        )
        parser.add_argument(
            "--validation-instances",
            type=int,
            default=defaults.validation_instances,
            help="Per task, training instances kept out of training to check agreement on.",
        )
        parser.add_argument(
            "--split-seed",
            type=int,
            default=None,
            help="Hold out the phrasings of this split seed (default: SOFTPROMPT_SPLIT_SEED).",
        )
        parser.add_argument(
            "--device",
            default=None,
            type=device_arg,
            help="auto, cpu, cuda or cuda:N (default: WORKER_DEVICE).",
        )
        parser.add_argument(
            "--no-score", action="store_true", help="Train only; queue the scoring for the workers."
        )

    def handle(self, *args, **opts):
        model = LanguageModel.objects.filter(name=opts["model"]).first()
        if model is None:
            raise CommandError(f"No model named '{opts['model']}'.")
        try:
            config = AlignConfig(
                num_virtual_tokens=opts["tokens"],
                init=opts["init"],
                lambda_kl=opts["lambda_kl"],
                lambda_rep=opts["lambda_rep"],
                learning_rate=opts["lr"],
                steps=opts["steps"],
                instances_per_batch=opts["instances"],
                paraphrases=opts["paraphrases"],
                grad_accumulation=opts["accumulate"],
                seed=opts["seed"],
                objective=opts["objective"],
                patience=opts["patience"],
                eval_every=opts["eval_every"],
                validation_instances=opts["validation_instances"],
            )
        except ConfigError as exc:
            raise CommandError(str(exc)) from exc
        if opts["split_seed"] is not None and opts["split_seed"] < 0:
            raise CommandError("--split-seed must be 0 or more.")
        soft = softprompts.softprompt_queue(
            model=model,
            trigger=RunTrigger.CLI,
            config=config,
            enqueue=False,
            split_seed=opts["split_seed"],
        )
        if soft.config != asdict(config) or (
            opts["split_seed"] is not None and soft.split_seed != opts["split_seed"]
        ):
            raise CommandError(
                f"Soft prompt #{soft.id} is already queued or training for {model.name}; wait for it."
            )
        with tqdm(total=config.steps, desc=f"soft prompt #{soft.id} ({config.ablation})", unit="step") as bar:

            def step(number: int, total: int, record: dict) -> None:
                bar.update(number - bar.n)
                bar.set_postfix(loss=f"{record['loss']:.4f}")

            soft = softprompts.softprompt_train_execute(
                soft_prompt_id=soft.id,
                task_id=f"cli-{uuid.uuid4()}",
                on_step=step,
                device=opts["device"],
                enqueue_scoring=opts["no_score"],
            )
        if soft is None or soft.status != JobStatus.SUCCEEDED:
            raise CommandError(f"Training failed: {soft.error if soft else 'not claimed'}")
        self.stdout.write(
            f"Soft prompt #{soft.id}: {soft.training_revisions.count()} training phrasings, "
            f"{soft.heldout_revisions.count()} held out; artifact {soft.artifact}"
        )
        if opts["no_score"]:
            return
        # Both variants in the foreground, the base model included: it must have the held-out phrasings too.
        try:
            for variant in (soft.variant, scoring.base_variant(model)):
                scoring.variant_score_now(variant=variant, say=self.stdout.write)
        except ApplicationError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS("Done."))

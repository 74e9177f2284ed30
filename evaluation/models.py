"""Registered models, their variants, scoring runs and per-instance predictions."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse

from collection.models import Benchmark, Collection, Instance, Instruction, InstructionRevision, Task
from core.jobs import Job, JobKind, job_constraints, task_queue
from evaluation.ml.config import AlignConfig, ConfigError, ModelSpec, ScoreConfig
from evaluation.ml.families import FAMILIES
from evaluation.ml.prompts import FORMATS

# Model families and prompt formats are the ML core's tables (evaluation/ml/families.py, prompts.py): an entry
# added there is a choice here, and `makemigrations` records it in the field's choices and check constraint.
ModelFamily = models.TextChoices(
    "ModelFamily", [(family.name.upper(), (family.name, family.label)) for family in FAMILIES.values()]
)


class Dtype(models.TextChoices):
    AUTO = "auto", "Auto (bfloat16 on GPU, float32 on CPU)"
    FLOAT32 = "float32", "float32"
    BFLOAT16 = "bfloat16", "bfloat16"
    FLOAT16 = "float16", "float16"


PromptFormat = models.TextChoices(
    "PromptFormat", [(fmt.name.upper(), (fmt.name, fmt.label)) for fmt in FORMATS.values()]
)


class Truncation(models.TextChoices):
    # lm-evaluation-harness keeps the end of a long prompt: the question, the options and the answer cue.
    KEEP_END = "keep_end", "Keep the end (drop the start)"
    # The study's tokenizer call (truncation=True, right side) cut the end, answer cue included.
    CUT_END = "cut_end", "Cut the end (the study's)"


class VariantKind(models.TextChoices):
    BASE = "base", "Base model"
    SOFT_PROMPT = "soft_prompt", "With a soft prompt"
    # Batch calibration of the base model's stored option scores (evaluation/robustness/calibration.py): no training.
    CALIBRATED = "calibrated", "Batch-calibrated (no training)"
    IMPORTED = "imported", "Published results (imported)"


# Variants with predictions on the held-out phrasings alone, judged beside their base model there: a soft
# prompt (the other phrasings may be in its training set) and batch calibration (a baseline to it).
HELDOUT_ONLY_KINDS = (VariantKind.SOFT_PROMPT, VariantKind.CALIBRATED)
# A model's own figures: its base variant's, or its published (imported) results; never a held-out-only
# variant's, which cover some phrasings only and are the model plus a method.
OWN_KINDS = tuple(kind for kind in VariantKind if kind not in HELDOUT_ONLY_KINDS)


class PhrasingSet(models.TextChoices):
    ALL = "all", "All phrasings"
    OBSERVED = "observed", "Observed (in the model's tuning data)"
    UNOBSERVED = "unobserved", "Unobserved"
    # The benchmark's own prompt: neither an instruction-tuning phrasing nor a human-written one, so the study
    # counts it in neither set above; "all" includes it.
    DEFAULTS = "defaults", "Benchmark defaults"
    # Phrasings no soft prompt ever trains on (see evaluation/split.py): where base and aligned compare.
    HELDOUT = "heldout", "Held out from soft-prompt training"
    HELDOUT_UNOBSERVED = "heldout_unobserved", "Held out and unobserved"


class ResultSource(models.TextChoices):
    SCORED = "scored", "Scored here"
    IMPORTED = "imported", "Imported"


class RunTrigger(models.TextChoices):
    APPROVAL = "approval", "A phrasing was approved"
    REGISTRATION = "registration", "The model was registered"
    IMPORT = "import", "Phrasings were imported"
    MANUAL = "manual", "Started by hand"
    CLI = "cli", "The score command"


class RunLane(models.TextChoices):
    # A person waits for it: a newly approved phrasing, a user's retry.
    INTERACTIVE = "interactive", "Interactive"
    # Nobody waits for one cell of it: imports, registration backfills, "score everything", rescoring.
    BULK = "bulk", "Bulk"


# The Celery queue of each lane. GPU workers take both, `gpu` first (see CELERY_BROKER_TRANSPORT_OPTIONS),
# and a bulk run goes back to its queue after every chunk, so interactive work waits at most one chunk.
LANE_QUEUES = {RunLane.INTERACTIVE: "gpu", RunLane.BULK: "gpu-bulk"}


class RunMode(models.TextChoices):
    EXHAUSTIVE = "exhaustive", "Exhaustive (every cell)"
    # Scores cells in rounds, each chosen where it narrows the figures most, up to a budget
    # (evaluation/leaderboards/adaptive_estimates.py); the task's figures are estimates until it is exhaustive.
    ADAPTIVE = "adaptive", "Adaptive (a budget of cells, figures estimated)"


class ModelState(models.TextChoices):
    CHECKING = "checking", "Checking that it loads"
    READY = "ready", "Ready"
    FAILED = "failed", "Does not load"


# A source starting with one of these is a path on the workers' disks (the loader reads it as one too); a hub
# id is "name" or "org/name", so a source with a second slash or a backslash is a path as well.
LOCAL_SOURCE_PREFIXES = ("/", ".", "~")
LOCAL_SOURCE_SHOWN = "(local path)"


class LanguageModelQuerySet(models.QuerySet):
    def published_only(self) -> models.QuerySet:
        """Rows of imported published results (evaluation/leaderboards/published_results.py, a release's
        published rows): an imported variant and no base one, since there are no weights to load."""
        variants = ModelVariant.objects.filter(model=OuterRef("pk"))
        return self.filter(
            Exists(variants.filter(kind=VariantKind.IMPORTED)),
            ~Exists(variants.filter(kind=VariantKind.BASE)),
        )

    def scorable(self) -> models.QuerySet:
        """The models new phrasings are scored on: active and ready, less rows of published results only,
        which have nothing to load even if an admin marked one active; a loop over them would refuse the
        whole approval or import (scoring.base_variant)."""
        ready = self.filter(is_active=True, state=ModelState.READY)
        return ready.exclude(pk__in=LanguageModel.objects.published_only().values("pk"))


class LanguageModel(models.Model):
    """A model to score: where to load it from and how it reads a prompt, and what its check found.

    The web process never loads a model. A worker checks each registered model (ModelCheck): it loads it and
    stores its chat template, the special tokens the template reads and its input length here, and only a
    ready model is scored. Rows made without registration (imported published results, which load nothing)
    start ready: there is nothing for them to check."""

    Family = ModelFamily
    Dtype = Dtype
    PromptFormat = PromptFormat
    State = ModelState

    objects = LanguageModelQuerySet.as_manager()

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    source = models.CharField(
        max_length=500, help_text="A Hugging Face hub id (google/flan-t5-base) or a local path."
    )
    revision = models.CharField(
        max_length=100, blank=True, help_text="Hub branch, tag or commit; blank: the default."
    )
    family = models.CharField(max_length=10, choices=ModelFamily.choices)
    dtype = models.CharField(max_length=10, choices=Dtype.choices, default=Dtype.AUTO)
    prompt_format = models.CharField(max_length=10, choices=PromptFormat.choices, default=PromptFormat.NONE)
    tuned_on = models.ManyToManyField(
        Collection,
        blank=True,
        related_name="tuned_models",
        help_text="Instruction collections the model was tuned on: their phrasings are 'observed' for it.",
    )
    trust_remote_code = models.BooleanField(
        default=False,
        help_text="Runs Python code shipped with the model. Only turn on for code you have read.",
    )
    batch_size = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        default=ScoreConfig.batch_size,
        help_text="Items per batch, fixed (halves on out-of-memory). Blank: automatic, batches filled to a "
        "token budget found per model on a GPU, 16 items on a CPU.",
    )
    is_active = models.BooleanField(default=True, help_text="Active models score newly approved phrasings.")
    align = models.BooleanField(
        default=False,
        help_text="Retrain this model's alignment soft prompt whenever its pool of approved training phrasings "
        "has grown by SOFTPROMPT_RETRAIN_AFTER since the last one.",
    )
    state = models.CharField(
        max_length=10,
        choices=ModelState.choices,
        default=ModelState.READY,
        help_text="Only a ready model is scored. Registration sets 'checking' until a worker has loaded it.",
    )
    benchmarks = models.ManyToManyField(
        Benchmark,
        blank=True,
        related_name="+",
        help_text="Score it on these benchmarks only (the demo model means nothing outside the demo); "
        "none: every benchmark.",
    )
    check_error = models.TextField(blank=True, help_text="Why the last check could not load it.")
    checked_at = models.DateTimeField(null=True, blank=True, help_text="When a check last loaded it.")
    chat_template = models.TextField(
        blank=True, help_text="The tokenizer's chat template, stored by the check; the preview renders it."
    )
    special_tokens = models.JSONField(
        default=dict, blank=True, help_text="The tokenizer's special tokens (bos_token, eos_token, ...)."
    )
    max_input_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="The longest input it takes, in tokens; blank: not stated."
    )
    truncation = models.CharField(
        max_length=10,
        choices=Truncation.choices,
        default=Truncation.KEEP_END,
        help_text="What is dropped from a prompt longer than the maximum input length.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(family__in=ModelFamily.values), name="model_family_valid"),
            models.CheckConstraint(condition=Q(dtype__in=Dtype.values), name="model_dtype_valid"),
            models.CheckConstraint(
                condition=Q(prompt_format__in=PromptFormat.values), name="model_prompt_format_valid"
            ),
            models.CheckConstraint(
                condition=Q(truncation__in=Truncation.values), name="model_truncation_valid"
            ),
            models.CheckConstraint(condition=Q(batch_size__gte=1), name="model_batch_size_positive"),
            models.CheckConstraint(condition=Q(state__in=ModelState.values), name="model_state_valid"),
            models.CheckConstraint(
                condition=~Q(state="failed") | ~Q(check_error=""), name="model_failure_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_ready(self) -> bool:
        return self.state == ModelState.READY

    @property
    def carries_published_results_only(self) -> bool:
        """Nothing can be scored on it (LanguageModelQuerySet.published_only, the one rule)."""
        return LanguageModel.objects.published_only().filter(pk=self.pk).exists()

    @property
    def source_is_local(self) -> bool:
        source = self.source.strip()
        return source.startswith(LOCAL_SOURCE_PREFIXES) or "\\" in source or source.count("/") > 1

    @property
    def public_source(self) -> str:
        """The source as shown to everyone but admins: a hub id as it is, a path on our disks not at all."""
        return LOCAL_SOURCE_SHOWN if self.source_is_local else self.source

    def without_source(self, text: str) -> str:
        """`text` (a loader's error, say) with this model's local path replaced, for everyone but admins."""
        if not self.source_is_local or not text:
            return text
        source = self.source.strip()
        for path in sorted(
            {source, source.rstrip("/"), str(Path(source).expanduser())}, key=len, reverse=True
        ):
            if path:
                text = text.replace(path, LOCAL_SOURCE_SHOWN)
        return text

    def spec(self) -> ModelSpec:
        return ModelSpec(
            source=self.source,
            family=self.family,
            revision=self.revision,
            dtype=self.dtype,
            prompt_format=self.prompt_format,
            trust_remote_code=self.trust_remote_code,
            max_input_tokens=self.max_input_tokens,
            truncation=self.truncation,
        )


class ModelCheck(Job):
    """One check that a registered model loads, by a GPU worker (the web process never loads a model). On
    success it stores what the web needs on the model (its chat template, special tokens, input length), makes
    it ready and, if `score`, queues the approved phrasings on it; on failure the model is failed with the
    loader's reason. A retry is a new check: a failed one stays as the record of what happened."""

    job = JobKind(
        task="evaluation.tasks.check_model",
        # On the gpu queue because it loads the model, where scoring will load it (the worker keeps it warm).
        queue="gpu",
        noun="check",
        work="evaluation.runs.registry.language_model_check_work",
        failures="evaluation.runs.registry.CHECK_FAILURES",
        # Never cancelled; retried from its model (registry.language_model_check_retry), as a new check.
    )

    model = models.ForeignKey(LanguageModel, on_delete=models.CASCADE, related_name="checks")
    trigger = models.CharField(max_length=20, choices=RunTrigger.choices)
    score = models.BooleanField(
        default=True, help_text="Once the model loads, queue every approved phrasing it has not scored."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A retry clicked twice, or a retry during an admin's edit, cannot check one model twice at once.
            models.UniqueConstraint(
                fields=["model"],
                condition=Q(status__in=["queued", "running"]),
                name="modelcheck_one_active_per_model",
            ),
            models.CheckConstraint(
                condition=Q(trigger__in=RunTrigger.values), name="modelcheck_trigger_valid"
            ),
            *job_constraints("modelcheck"),
        ]

    def __str__(self) -> str:
        return f"check #{self.pk} of {self.model.name}"

    @property
    def progress_text(self) -> str:
        return "loading the model"

    def get_absolute_url(self) -> str:
        return reverse("model_detail", args=[self.model.name])


class ModelVariant(models.Model):
    """What a leaderboard row and a prediction belong to: a model as registered, or with a soft prompt."""

    Kind = VariantKind

    model = models.ForeignKey(LanguageModel, on_delete=models.CASCADE, related_name="variants")
    kind = models.CharField(max_length=20, choices=VariantKind.choices, default=VariantKind.BASE)
    provenance = models.CharField(
        max_length=500, blank=True, help_text="Imported results: where they come from."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model__name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model"], condition=Q(kind="base"), name="variant_one_base_per_model"
            ),
            models.UniqueConstraint(
                fields=["model"], condition=Q(kind="imported"), name="variant_one_imported_per_model"
            ),
            models.UniqueConstraint(
                fields=["model"], condition=Q(kind="calibrated"), name="variant_one_calibrated_per_model"
            ),
            models.CheckConstraint(condition=Q(kind__in=VariantKind.values), name="variant_kind_valid"),
        ]

    @property
    def heldout_only(self) -> bool:
        return self.kind in HELDOUT_ONLY_KINDS

    def spec(self) -> ModelSpec:
        """The model as this variant reads its input: with its soft prompt in front, if it has one."""
        if self.kind == VariantKind.CALIBRATED:
            # Its predictions are computed from the base model's stored scores; a scorer must never load it.
            raise ConfigError(
                "A batch-calibrated variant is not scored: calibrate it (evaluation/robustness/calibration.py)."
            )
        spec = self.model.spec()
        if self.kind == VariantKind.SOFT_PROMPT:
            from dataclasses import replace

            spec = replace(spec, soft_prompt=self.soft_prompt.artifact)
        return spec

    def __str__(self) -> str:
        if self.kind == VariantKind.IMPORTED:
            return f"{self.model.name} (imported)"
        if self.kind == VariantKind.BASE:
            return self.model.name
        if self.kind == VariantKind.CALIBRATED:
            return f"{self.model.name} + batch calibration"
        soft = getattr(self, "soft_prompt", None)
        if soft is not None:
            return f"{self.model.name} + soft prompt #{soft.id} ({soft.ablation})"
        # Imported from a release (evaluation/releases/load.py): no training here, so the source's own label
        # ("tiny + soft prompt #3 (ce)", in the provenance) says which one it was; two read alike without it.
        _, marker, source = self.provenance.rpartition(" + soft prompt")
        return f"{self.model.name} + soft prompt" + (source if marker else "")


class PlanStatus(models.TextChoices):
    PLANNED = "planned", "Planned: waiting for an admin"
    STARTED = "started", "Started"
    DISCARDED = "discarded", "Discarded"


class ScoringPlan(models.Model):
    """Bulk work over the budget (SCORING_BUDGET_CELLS): its runs are saved as planned, not sent, until an
    admin starts them (evaluation/runs/budget.py). One per registration, import or "score everything"."""

    Status = PlanStatus

    trigger = models.CharField(max_length=20, choices=RunTrigger.choices)
    status = models.CharField(max_length=20, choices=PlanStatus.choices, default=PlanStatus.PLANNED)
    budget_cells = models.PositiveIntegerField(help_text="The budget it exceeded, in cells to compute.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=PlanStatus.values), name="plan_status_valid"),
            models.CheckConstraint(condition=Q(trigger__in=RunTrigger.values), name="plan_trigger_valid"),
        ]

    def __str__(self) -> str:
        return f"Plan {self.pk} ({self.get_trigger_display().lower()})"

    def get_absolute_url(self) -> str:
        return reverse("plan_detail", args=[self.pk])


class ScoringRun(Job):
    """One model variant x a fixed set of phrasing revisions x each one's task evaluation sample. Executed
    in chunks of at most SCORING_CHUNK_CELLS cells, each one delivery of its job."""

    Trigger = RunTrigger
    Lane = RunLane
    Mode = RunMode
    job = JobKind(
        task="evaluation.tasks.score_run",
        queue="gpu",  # interactive; a bulk run is sent to gpu-bulk by its lane (job_queue)
        noun="run",
        work="evaluation.runs.scoring.scoring_run_chunk_work",
        failures="evaluation.runs.scoring.FAILURES",
        cancellable=True,
        # The same row queued again: its scored cells are kept.
        retry="evaluation.runs.scoring.scoring_run_retry",
        cancelled="Run {job.id} cancelled. Cells it scored are kept.",
        retried="Run {job.id} queued again; it scores only the missing cells.",
        retry_note="missing cells only",
    )

    variant = models.ForeignKey(ModelVariant, on_delete=models.CASCADE, related_name="runs")
    task = models.ForeignKey(Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    instruction = models.ForeignKey(
        Instruction, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revisions = models.ManyToManyField(InstructionRevision, related_name="scoring_runs")
    trigger = models.CharField(max_length=20, choices=RunTrigger.choices)
    lane = models.CharField(max_length=20, choices=RunLane.choices, default=RunLane.BULK)
    plan = models.ForeignKey(
        ScoringPlan, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    mode = models.CharField(max_length=20, choices=RunMode.choices, default=RunMode.EXHAUSTIVE)
    budget_cells = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Adaptive runs: the most cells it computes. Its total is then what it had plus this.",
    )
    total_cells = models.PositiveIntegerField(default=0, help_text="Predictions the run's scope needs.")
    cached_cells = models.PositiveIntegerField(
        default=0, help_text="Of those, how many existed when it was created."
    )
    done_cells = models.PositiveIntegerField(default=0, help_text="Of those, how many exist now.")
    truncated_cells = models.PositiveIntegerField(
        default=0,
        help_text="Of the cells it computed, how many prompts were cut to the model's input length.",
    )
    chunks = models.PositiveIntegerField(default=0, help_text="Chunks it has scored.")
    cells_per_second = models.FloatField(
        null=True, blank=True, help_text="Throughput of its latest chunk: queue estimates start from it."
    )
    config = models.JSONField(default=dict, blank=True, help_text="The model spec and batching the run used.")
    formats = models.JSONField(
        default=list,
        blank=True,
        help_text="Keys of the declared formats it scores (collection/formats.py), into FormatPrediction; "
        "empty: the phrasings as written, into Prediction.",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(trigger__in=RunTrigger.values), name="run_trigger_valid"),
            models.CheckConstraint(condition=Q(lane__in=RunLane.values), name="run_lane_valid"),
            models.CheckConstraint(condition=Q(mode__in=RunMode.values), name="run_mode_valid"),
            # An adaptive run without a budget would never stop short of exhaustive; an exhaustive one has none.
            models.CheckConstraint(
                condition=Q(mode="exhaustive", budget_cells__isnull=True)
                | Q(mode="adaptive", budget_cells__gte=1),
                name="run_adaptive_has_budget",
            ),
            *job_constraints("run"),
        ]
        indexes = [
            # Serves the recovery sweep and the runs list: "queued or running runs".
            models.Index(fields=["status", "heartbeat_at"], name="run_status_heartbeat"),
            # Serves queue positions: "active runs of a lane, oldest first".
            models.Index(fields=["status", "lane", "created_at"], name="run_status_lane_created"),
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.variant})"

    def get_absolute_url(self) -> str:
        return reverse("run_detail", args=[self.pk])

    @classmethod
    def job_queue(cls, pk: int) -> str | None:
        lane = cls.objects.filter(pk=pk).values_list("lane", flat=True).first()
        return LANE_QUEUES.get(lane)

    @classmethod
    def queue_counts(cls, jobs: models.QuerySet) -> dict[str, int]:
        by_lane = jobs.order_by().values_list("lane").annotate(n=models.Count("pk")).values_list("lane", "n")
        counts: dict[str, int] = {}
        for lane, n in by_lane:
            queue = LANE_QUEUES.get(lane) or task_queue(cls)
            counts[queue] = counts.get(queue, 0) + n
        return counts

    @property
    def progress_text(self) -> str:
        adaptive = ", adaptive" if self.mode == RunMode.ADAPTIVE else ""
        return (
            f"{self.done_cells:,} of {self.total_cells:,} cells ({self.get_lane_display().lower()}{adaptive})"
        )

    @property
    def to_compute(self) -> int:
        return max(0, self.total_cells - self.cached_cells)

    @property
    def percent(self) -> int:
        return 100 if not self.total_cells else int(100 * self.done_cells / self.total_cells)


class Prediction(models.Model):
    """One cell: a model variant's answer to one instance under one phrasing revision."""

    variant = models.ForeignKey(ModelVariant, on_delete=models.CASCADE, related_name="predictions")
    revision = models.ForeignKey(InstructionRevision, on_delete=models.CASCADE, related_name="predictions")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="predictions")
    run = models.ForeignKey(
        ScoringRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="predictions"
    )
    logliks = models.JSONField(
        help_text="Sum of log-probabilities of each option's tokens (a batch-calibrated variant: each option's "
        "calibrated score, log p(option | prompt) - log of its mean probability over the phrasing's batch)."
    )
    lengths = models.JSONField(help_text="Each option's length in tokens.")
    predicted = models.PositiveSmallIntegerField()
    correct = models.BooleanField()
    truncated = models.BooleanField(
        default=False, help_text="The prompt was longer than the model's input length and was cut."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Also serves "the predictions of a variant for these revisions" (skipping cached cells, aggregates).
            models.UniqueConstraint(
                fields=["variant", "revision", "instance"], name="prediction_unique_cell"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.variant} / rev {self.revision_id} / {self.instance_id}"


class PhrasingResult(models.Model):
    """A variant's accuracy on one phrasing revision over its task's evaluation sample, kept current by the
    aggregate job so that pages never scan predictions. Imported results have no instance counts."""

    variant = models.ForeignKey(ModelVariant, on_delete=models.CASCADE, related_name="phrasing_results")
    revision = models.ForeignKey(InstructionRevision, on_delete=models.CASCADE, related_name="results")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="phrasing_results")
    accuracy = models.FloatField()
    n_correct = models.PositiveIntegerField(null=True, blank=True)
    n_total = models.PositiveIntegerField(null=True, blank=True)
    complete = models.BooleanField(default=True, help_text="Every instance of the sample is scored.")
    source = models.CharField(max_length=10, choices=ResultSource.choices, default=ResultSource.SCORED)
    provenance = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["variant", "revision"], name="result_unique_per_variant_revision"
            ),
            models.CheckConstraint(
                condition=Q(accuracy__gte=0, accuracy__lte=1), name="result_accuracy_range"
            ),
        ]
        indexes = [
            # Serves the task grid and the charts: "results of these variants on this task".
            models.Index(fields=["task", "variant"], name="result_task_variant"),
            # Serves the models list's scored cells per model from the index alone (no heap reads).
            models.Index(
                fields=["variant"],
                include=["n_total"],
                condition=Q(source="scored"),
                name="result_scored_cells",
            ),
        ]


class _WithoutReplicates(models.Manager):
    def get_queryset(self):
        return super().get_queryset().defer("replicates")


class TaskSummary(models.Model):
    """Every robustness figure of a variant on a task, over one set of phrasings (see evaluation/stats/metrics.py)."""

    # Pages read figures only; the replicates (30 kB a row) are read where benchmark rows are averaged.
    objects = _WithoutReplicates()
    with_replicates = models.Manager()

    variant = models.ForeignKey(ModelVariant, on_delete=models.CASCADE, related_name="task_summaries")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="summaries")
    phrasing_set = models.CharField(max_length=20, choices=PhrasingSet.choices)
    figures = models.JSONField()
    # Bootstrap replicates of every figure (evaluation/stats/replicates.py): a benchmark row is averaged from its
    # tasks' stored replicates instead of rebuilding every task's matrix when one task changes.
    replicates = models.BinaryField(null=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "task summaries"
        constraints = [
            models.UniqueConstraint(fields=["variant", "task", "phrasing_set"], name="task_summary_unique"),
        ]
        indexes = [
            # Serves the task page's model table: "summaries of this task".
            models.Index(fields=["task", "phrasing_set"], name="task_summary_task_set"),
            # Serves the leaderboard's data version: the (few) estimated summaries of a benchmark.
            models.Index(
                fields=["task", "updated_at"],
                condition=Q(figures__estimated=True),
                name="task_summary_estimated",
            ),
        ]


class BenchmarkSummary(models.Model):
    """Macro averages over a benchmark's tasks (all, or one task kind) for one variant and phrasing set:
    the leaderboard reads one row per variant."""

    variant = models.ForeignKey(ModelVariant, on_delete=models.CASCADE, related_name="benchmark_summaries")
    benchmark = models.ForeignKey("collection.Benchmark", on_delete=models.CASCADE, related_name="summaries")
    phrasing_set = models.CharField(max_length=20, choices=PhrasingSet.choices)
    task_kind = models.CharField(max_length=20, blank=True, help_text="Blank: every task kind.")
    figures = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "benchmark summaries"
        constraints = [
            models.UniqueConstraint(
                fields=["variant", "benchmark", "phrasing_set", "task_kind"], name="benchmark_summary_unique"
            ),
        ]
        indexes = [
            # Serves the leaderboard: "summaries of this benchmark for this set and kind".
            models.Index(fields=["benchmark", "phrasing_set", "task_kind"], name="bench_summary_lookup"),
            # Serves the leaderboard's data version (newest update and count) from the index alone.
            models.Index(fields=["benchmark", "updated_at"], name="bench_summary_version"),
        ]


# A snapshot's public id: ten characters of Crockford's base32 alphabet, lower case (no i, l, o or u, so
# an id read aloud or copied from paper is not misread); 50 random bits (evaluation/leaderboards/snapshots.py).
SNAPSHOT_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
SNAPSHOT_ID_LENGTH = 10
SNAPSHOT_ID_REGEX = rf"^[{SNAPSHOT_ID_ALPHABET}]{{{SNAPSHOT_ID_LENGTH}}}$"


class LeaderboardSnapshot(models.Model):
    """A leaderboard frozen under a permanent id: the leaderboard API's answer for one view of a benchmark,
    kept as the exact text the API gave, with the data version it came from. Its pages and API read this row
    alone, so later approvals, retirements and re-scoring leave it as it was (docs/snapshots.md)."""

    public_id = models.CharField(max_length=SNAPSHOT_ID_LENGTH, unique=True, editable=False)
    # The benchmark's slug and name are copied, so a snapshot outlives its benchmark.
    benchmark = models.ForeignKey(
        "collection.Benchmark", null=True, blank=True, on_delete=models.SET_NULL, related_name="snapshots"
    )
    benchmark_slug = models.SlugField(max_length=100)
    benchmark_name = models.CharField(max_length=200)
    # The view frozen: the leaderboard API's parameters (set, kind, sort, dir, partial). Plain text, not
    # choices: a phrasing set renamed later must not make an old snapshot invalid.
    phrasing_set = models.CharField(max_length=20)
    task_kind = models.CharField(max_length=20, blank=True)
    sort = models.CharField(max_length=40)
    descending = models.BooleanField(default=True)
    with_partial = models.BooleanField(default=False)
    data_version = models.JSONField(
        help_text="selectors.leaderboard_version when frozen: [newest summary update, summaries, newest "
        "estimated task summary update, estimated task summaries]."
    )
    # Text, not JSON: PostgreSQL's jsonb reorders keys and rewrites numbers, and the bytes are what is cited
    # and hashed.
    payload = models.TextField(help_text="The leaderboard API's JSON answer, exactly as it was given.")
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the payload's UTF-8 bytes.")
    title = models.CharField(max_length=200, blank=True)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Freezing a view whose answer has not changed finds the snapshot already made (and serves
            # that lookup).
            models.UniqueConstraint(
                fields=[
                    "benchmark_slug",
                    "phrasing_set",
                    "task_kind",
                    "sort",
                    "descending",
                    "with_partial",
                    "sha256",
                ],
                name="snapshot_unique_content",
            ),
            models.CheckConstraint(
                condition=Q(public_id__regex=SNAPSHOT_ID_REGEX), name="snapshot_public_id_format"
            ),
            models.CheckConstraint(condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="snapshot_sha256_hex"),
        ]
        indexes = [
            # Serves the snapshot lists: "a benchmark's snapshots, newest first".
            models.Index(fields=["benchmark_slug", "-created_at"], name="snapshot_benchmark_newest"),
            # Serves the list of every snapshot, newest first.
            models.Index(fields=["-created_at"], name="snapshot_newest"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.benchmark_slug})"

    def get_absolute_url(self) -> str:
        return reverse("snapshot_detail", args=[self.public_id])

    def leaderboard(self) -> dict:
        """The frozen answer, parsed."""
        import json

        return json.loads(self.payload)


class SoftPrompt(Job):
    """One training of a model's alignment soft prompt: its config, exactly which phrasing revisions and
    instances it saw, the phrasings held out from it, its loss curve and its artifact (a PEFT adapter)."""

    job = JobKind(
        task="evaluation.tasks.train_softprompt",
        queue="gpu",
        noun="training",
        label="soft prompt",
        work="evaluation.robustness.softprompts.softprompt_train_work",
        failures="evaluation.robustness.softprompts.FAILURES",
        # A training that starts again (its worker died) starts from its seed.
        restart_fields={"steps_done": 0, "curve": []},
        cancellable=True,
        # A new training with the same settings: the failed one keeps its curve and error as the record.
        retry="evaluation.robustness.softprompts.softprompt_retry",
        cancelled="Training cancelled.",
        retried="Queued again with the same settings.",
    )

    model = models.ForeignKey(LanguageModel, on_delete=models.CASCADE, related_name="soft_prompts")
    variant = models.OneToOneField(
        ModelVariant,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="soft_prompt",
        help_text="The leaderboard row of the model with this soft prompt, once trained.",
    )
    trigger = models.CharField(max_length=20, choices=RunTrigger.choices)
    config = models.JSONField(help_text="The AlignConfig (see evaluation/ml/softprompt.py).")
    split_seed = models.PositiveIntegerField(default=0)
    pool_size = models.PositiveIntegerField(
        default=0, help_text="Approved training phrasings when it was queued."
    )
    training_revisions = models.ManyToManyField(
        InstructionRevision, related_name="soft_prompts_trained", blank=True
    )
    heldout_revisions = models.ManyToManyField(
        InstructionRevision, related_name="soft_prompts_heldout", blank=True
    )
    seen = models.JSONField(
        default=dict,
        blank=True,
        help_text="Task slug -> [[revision id, instance id], ...] pairs it trained on.",
    )
    curve = models.JSONField(default=list, blank=True, help_text="Loss terms per optimiser step.")
    # Tens of kB each (every trained pair, every step's losses): read by the soft prompt's own page and its
    # training only, so lists and rows that merely name a soft prompt defer them (named_variants).
    HEAVY_FIELDS = ("seen", "curve")
    steps_done = models.PositiveIntegerField(default=0)
    steps_total = models.PositiveIntegerField(default=0)
    artifact = models.CharField(max_length=500, blank=True, help_text="Directory of the PEFT adapter.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Two triggers at once (two approvals, a click and the automatic retrain) cannot start two trainings.
            models.UniqueConstraint(
                fields=["model"],
                condition=Q(status__in=["queued", "running"]),
                name="softprompt_one_active_per_model",
            ),
            *job_constraints("softprompt"),
        ]

    def __str__(self) -> str:
        return f"soft prompt #{self.pk} for {self.model.name}"

    @property
    def ablation(self) -> str:
        try:
            return AlignConfig(**self.config).ablation
        except (TypeError, ValueError):
            return "?"

    @property
    def percent(self) -> int:
        return int(100 * self.steps_done / self.steps_total) if self.steps_total else 0

    @property
    def progress_text(self) -> str:
        return f"training step {self.steps_done} of {self.steps_total}"

    def get_absolute_url(self) -> str:
        return reverse("softprompt_detail", args=[self.pk])


def named_variants(queryset, path: str = "variant"):
    """`queryset` with what a ModelVariant's name reads joined in (str(variant): its model, and its soft prompt's
    id and ablation), the soft prompt's heavy fields deferred. `path` leads from the queryset's model to the
    variant ("" when the queryset is of variants); the other joins a query needs are its own."""
    prefix = f"{path}__" if path else ""
    return queryset.select_related(f"{prefix}model", f"{prefix}soft_prompt").defer(
        *(f"{prefix}soft_prompt__{name}" for name in SoftPrompt.HEAVY_FIELDS)
    )


class FormatPrediction(models.Model):
    """One cell of the format axis: a variant's answer to an instance under a phrasing revision whose options
    are laid out in a declared format (collection/formats.py). Kept apart from Prediction, so every figure
    of the leaderboards stays on the phrasings as written; the wording-vs-format decomposition reads both
    (the as-written format's cells are the ordinary predictions). Options, log-likelihoods, lengths and
    `predicted` are in the instance's own option order, whatever order the format showed them in."""

    variant = models.ForeignKey(ModelVariant, on_delete=models.CASCADE, related_name="format_predictions")
    revision = models.ForeignKey(
        InstructionRevision, on_delete=models.CASCADE, related_name="format_predictions"
    )
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="format_predictions")
    format_key = models.CharField(max_length=40)
    run = models.ForeignKey(
        ScoringRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="format_predictions"
    )
    logliks = models.JSONField()
    lengths = models.JSONField()
    predicted = models.PositiveSmallIntegerField()
    correct = models.BooleanField()
    truncated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["variant", "revision", "instance", "format_key"], name="format_prediction_unique_cell"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.variant} / rev {self.revision_id} / {self.instance_id} / {self.format_key}"


class ReleaseExport(Job):
    """One dataset release written by a worker into RELEASES_DIR/<name>-<version> (evaluation/releases/, the
    layout in docs/releases.md): what `manage.py export_release` writes, asked for from admin or the API.
    The name and version are fixed when it is asked for, so a retry writes the same directory, and a failed
    export leaves nothing that looks like a release."""

    job = JobKind(
        task="evaluation.tasks.export_release",
        # Reads the database and writes files; no model is loaded.
        queue="default",
        noun="release export",
        work="evaluation.releases.export_jobs.release_export_work",
        failures="evaluation.releases.export_jobs.EXPORT_FAILURES",
        # The same row again: a failed export wrote nothing, and its name and version are still free.
        retry="core.jobs.requeue",
    )

    name = models.CharField(max_length=100)
    version = models.CharField(max_length=100)
    benchmarks = models.JSONField(
        default=list, blank=True, help_text="The benchmarks' slugs; empty: every benchmark."
    )
    license = models.CharField(max_length=100)
    counts = models.JSONField(default=dict, blank=True, help_text="Rows per config, once written.")
    data_version = models.CharField(max_length=64, blank=True, help_text="From the written release.json.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One directory per name and version: asking twice for one is refused, not raced.
            models.UniqueConstraint(fields=["name", "version"], name="releaseexport_unique_directory"),
            *job_constraints("releaseexport"),
        ]

    def __str__(self) -> str:
        return f"release {self.directory}"

    @property
    def directory(self) -> str:
        return f"{self.name}-{self.version}"

    @property
    def path(self) -> Path:
        return Path(settings.RELEASES_DIR) / self.directory

    @property
    def progress_text(self) -> str:
        return "writing the release's Parquet files"

    def get_absolute_url(self) -> str:
        return reverse("releaseexport-detail", args=[self.pk])

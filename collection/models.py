"""Benchmarks, tasks, instances and phrasings (instructions) with immutable, content-hashed revisions."""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.db import models
from django.db.models import Q

from collection import templating


class TaskKind(models.TextChoices):
    MULTIPLE_CHOICE = "multiple_choice", "Multiple choice"
    BINARY = "binary", "Binary"
    CLASSIFICATION = "classification", "Classification"


class AnswerFormat(models.TextChoices):
    # The model answers with the option's letter (A, B, ...): MMLU and BIG-bench multiple choice.
    LETTER = "letter", "Letter of the option"
    # The model answers with the option's text itself, one of a fixed set of label words (yes/no).
    OPTION_TEXT = "option_text", "Text of the option"


class Split(models.TextChoices):
    EVAL = "eval", "Evaluation"
    TRAIN = "train", "Training"


class CollectionKind(models.TextChoices):
    CROWD = "crowd", "Crowd-written"
    BENCHMARK_DEFAULT = "benchmark_default", "Benchmark default"
    TUNING = "tuning", "Instruction-tuning collection"


class Answers(models.TextChoices):
    """What a phrasing asks the model to answer with (the strings rank classification scores)."""

    # The task's own answers: letters on a letter-answered task, the task's label words otherwise.
    TASK = "task", "The task's answers"
    # The phrasing's label words: one per task label (yes/no for same/different), or on a letter-answered
    # task one per option position (1..5, a..e).
    WORDS = "words", "The phrasing's label words"
    # Each instance's option texts (T0's templates that list the options and ask for the answer itself).
    TEXTS = "texts", "The option texts"


class PhrasingFormat(models.TextChoices):
    """Which models a phrasing is written for."""

    ANY = "", "Any model"
    # Alpaca's instruction/input layout ("### Input:"), written for Alpaca-format models: the study scored
    # these on its Alpaca models only.
    ALPACA = "alpaca", "Alpaca-format models only"


class InstructionStatus(models.TextChoices):
    PENDING = "pending", "Pending review"
    # A curator asked the author for an edit; editing sends it back to the queue as pending.
    NEEDS_EDIT = "needs_edit", "Edit requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    RETIRED = "retired", "Retired"


class Benchmark(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=500, blank=True, help_text="Where the data comes from.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Task(models.Model):
    Kind = TaskKind
    AnswerFormat = AnswerFormat

    benchmark = models.ForeignKey(Benchmark, on_delete=models.CASCADE, related_name="tasks")
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="subtasks",
        help_text="MMLU subjects sit under the pooled MMLU task; BIG-bench subtasks under their task.",
    )
    slug = models.SlugField(max_length=200)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=20, choices=TaskKind.choices)
    answer_format = models.CharField(max_length=20, choices=AnswerFormat.choices)
    input_fields = models.JSONField(default=list, help_text="Instance fields a template may use.")
    required_fields = models.JSONField(default=list, blank=True, help_text="Fields every template must use.")
    label_space = models.JSONField(
        default=list, help_text="What the model answers: letters A.. or the label words, in option order."
    )
    max_options = models.PositiveSmallIntegerField(default=0)
    prompt_parts = models.JSONField(
        default=dict,
        blank=True,
        help_text="The source benchmark's own prompt parts (BIG-bench: instruction, input, choice and output "
        "prefixes), from which its default phrasings are built.",
    )
    eval_sample_size = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Score each phrasing on this many eval instances (a fixed seeded sample); blank: all of them.",
    )
    eval_sample_seed = models.PositiveIntegerField(default=0, help_text="Seed of the evaluation sample.")
    source = models.CharField(max_length=500, blank=True)
    external_id = models.CharField(max_length=200, blank=True, help_text="The task's name at its source.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["benchmark", "slug"]
        constraints = [
            models.UniqueConstraint(fields=["benchmark", "slug"], name="task_unique_slug_per_benchmark"),
            models.CheckConstraint(condition=~Q(parent=models.F("id")), name="task_not_own_parent"),
            models.CheckConstraint(condition=Q(kind__in=TaskKind.values), name="task_kind_valid"),
            models.CheckConstraint(
                condition=Q(answer_format__in=AnswerFormat.values), name="task_answer_format_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.benchmark.slug}/{self.slug}"

    def template_fields(self) -> templating.TaskFields:
        return templating.TaskFields(
            input_fields=tuple(self.input_fields),
            max_options=self.max_options,
            required=tuple(self.required_fields),
            options_answered_by_letter=self.answer_format == AnswerFormat.LETTER,
        )


class Instance(models.Model):
    Split = Split

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="instances")
    split = models.CharField(max_length=10, choices=Split.choices, default=Split.EVAL)
    source_id = models.CharField(max_length=200, help_text="Stable id at the source, e.g. 'anatomy/test/12'.")
    inputs = models.JSONField(help_text="Field name -> text, for the task's input fields.")
    options = models.JSONField(help_text="Answer options, in order.")
    gold = models.PositiveSmallIntegerField(help_text="Index of the correct option.")

    class Meta:
        ordering = ["task", "id"]
        constraints = [
            models.UniqueConstraint(fields=["task", "source_id"], name="instance_unique_source_id_per_task"),
            models.CheckConstraint(condition=Q(split__in=Split.values), name="instance_split_valid"),
        ]
        indexes = [
            # Serves "the eval instances of these tasks" (scoring, previews, counts).
            models.Index(fields=["task", "split"], name="instance_task_split"),
        ]

    def __str__(self) -> str:
        return f"{self.task} #{self.source_id}"


class Collection(models.Model):
    """Where a phrasing comes from, as the observed/unobserved relation needs it."""

    Kind = CollectionKind

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=CollectionKind.choices)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=CollectionKind.values), name="collection_kind_valid"),
        ]

    def __str__(self) -> str:
        return self.name


def phrasing_key(*, benchmark_slug: str, task_slug: str, template: str) -> str:
    """A phrasing's identity on any database: a hash of its benchmark, task and first text, fixed when it is
    created. Database ids differ between a SQLite and a PostgreSQL install of the same data (and between
    fresh installs); this does not, so what depends on it (the soft prompts' held-out split) is the same on
    both. Two phrasings of one task written with the same first text share it, and so share their side of
    the split, which keeps a text from being trained on under one id and judged under another."""
    return hashlib.sha256(f"{benchmark_slug}\x1f{task_slug}\x1f{template}".encode()).hexdigest()


class PhrasingTag(models.Model):
    """What a phrasing varies, from a curated vocabulary (terse, formal, instruction after the input...):
    authors tag their phrasings, curators correct the tags, and a model's page compares its accuracy on the
    tagged phrasings with the rest ("are terse phrasings worse?"). Tags describe the phrasing, not one text:
    they are not part of a revision, and changing them scores nothing again."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=60)
    description = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class Instruction(models.Model):
    """A phrasing of a task. Its text lives in immutable revisions; `current_revision` is the one in use."""

    Status = InstructionStatus
    Format = PhrasingFormat

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="instructions")
    collection = models.ForeignKey(Collection, on_delete=models.PROTECT, related_name="instructions")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="instructions",
    )
    source = models.CharField(max_length=300, blank=True, help_text="External source, when not written here.")
    external_id = models.CharField(max_length=200, blank=True, help_text="The phrasing's id at its source.")
    prompt_format = models.CharField(
        max_length=10,
        choices=PhrasingFormat.choices,
        default=PhrasingFormat.ANY,
        blank=True,
        help_text="Blank: every model scores it; 'alpaca': only models with the Alpaca prompt format.",
    )
    stable_key = models.CharField(
        max_length=64,
        editable=False,
        help_text="phrasing_key() of its benchmark, task and first text: the same on every database.",
    )
    text_available = models.BooleanField(
        default=True,
        help_text="False for phrasings known only from published results: shown on leaderboards, never scored.",
    )
    submitted = models.BooleanField(
        default=False,
        help_text="Written by its author on the site (a page or the API), not uploaded or imported: only these "
        "count against the author's SUBMISSIONS_PER_HOUR.",
    )
    status = models.CharField(
        max_length=10, choices=InstructionStatus.choices, default=InstructionStatus.PENDING
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="reviews"
    )
    review_reason = models.TextField(blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    current_revision = models.ForeignKey(
        "InstructionRevision", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_revision = models.ForeignKey(
        "InstructionRevision",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The revision the latest review decision was taken on (blank: never reviewed here, or "
        "decided before decisions named their revision).",
    )
    tags = models.ManyToManyField(PhrasingTag, blank=True, related_name="instructions")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["task", "id"]
        constraints = [
            # A decision applies to the text it was taken on: while a phrasing stands decided (approved,
            # rejected, sent back, retired), its current text is the one reviewed. Only an author's edit moves
            # the text on, and it returns the phrasing to pending.
            models.CheckConstraint(
                condition=Q(status=InstructionStatus.PENDING)
                | Q(reviewed_revision__isnull=True)
                | Q(reviewed_revision=models.F("current_revision")),
                name="instruction_decided_text_is_reviewed_text",
            ),
            models.CheckConstraint(
                condition=Q(status__in=InstructionStatus.values), name="instruction_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(prompt_format__in=PhrasingFormat.values), name="instruction_prompt_format_valid"
            ),
            # Every way a phrasing is created names its stable key (collection.models.phrasing_key).
            models.CheckConstraint(condition=~Q(stable_key=""), name="instruction_has_stable_key"),
            # Written here by a user, or brought in from a named external source.
            models.CheckConstraint(
                condition=Q(author__isnull=False) | ~Q(source=""), name="instruction_has_author_or_source"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["rejected", "needs_edit"]) | ~Q(review_reason=""),
                name="instruction_rejection_has_reason",
            ),
            # Makes imports idempotent: one phrasing per external id per task and source.
            models.UniqueConstraint(
                fields=["task", "source", "external_id"],
                condition=~Q(external_id=""),
                name="instruction_unique_external_id",
            ),
        ]
        indexes = [
            # Serves "the approved phrasings of a task" (equivalence sets, scoring, task pages).
            models.Index(fields=["task", "status"], name="instruction_task_status"),
        ]

    def __str__(self) -> str:
        return f"{self.task} phrasing #{self.pk}"

    @property
    def template(self) -> str:
        return self.current_revision.template if self.current_revision_id else ""


def revision_hash(template: str, labels: list[str] | None, answers: str = Answers.TASK) -> str:
    """The content hash of a revision: what the model sees and answers (template, label words, answers)."""
    content = {"template": template, "labels": labels or None}
    if answers != Answers.TASK:
        # Only when set, so the hashes of revisions written before answers were declared stay as they were.
        content["answers"] = answers
    payload = json.dumps(content, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def normalised_key(template: str) -> str:
    """Whitespace- and case-insensitive key for spotting exact duplicates within a task."""
    return hashlib.sha256(" ".join(template.split()).casefold().encode("utf-8")).hexdigest()


class InstructionRevision(models.Model):
    """One immutable text of a phrasing. Results always belong to a revision, never to the mutable phrasing."""

    Answers = Answers

    instruction = models.ForeignKey(Instruction, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    template = models.TextField()
    labels = models.JSONField(
        null=True,
        blank=True,
        help_text="Optional label words for this phrasing, one per task label (e.g. yes/no for same/different).",
    )
    answers = models.CharField(
        max_length=10,
        choices=Answers.choices,
        default=Answers.TASK,
        help_text="What the model answers with: the task's answers, these label words, or the option texts.",
    )
    content_hash = models.CharField(max_length=64)
    normalised_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["instruction", "number"]
        constraints = [
            models.UniqueConstraint(fields=["instruction", "number"], name="revision_unique_number"),
            models.UniqueConstraint(fields=["instruction", "content_hash"], name="revision_unique_content"),
            models.CheckConstraint(condition=Q(number__gte=1), name="revision_number_positive"),
            models.CheckConstraint(condition=Q(answers__in=Answers.values), name="revision_answers_valid"),
            # Label words are what WORDS answers with; the other kinds ignore them.
            models.CheckConstraint(
                condition=~Q(answers="words") | Q(labels__isnull=False), name="revision_words_have_labels"
            ),
        ]
        indexes = [
            # Serves the exact-duplicate check when a phrasing is submitted to a task.
            models.Index(fields=["normalised_hash"], name="revision_normalised_hash"),
        ]

    def __str__(self) -> str:
        return f"{self.instruction} r{self.number}"

    def save(self, *args, **kwargs) -> None:
        # Revisions are immutable: results are keyed on them, so an edit must make a new revision.
        if self.pk is not None:
            raise ValueError("Instruction revisions are immutable; create a new revision instead.")
        self.content_hash = revision_hash(self.template, self.labels, self.answers)
        self.normalised_hash = normalised_key(self.template)
        super().save(*args, **kwargs)


class PhrasingEmbedding(models.Model):
    """A revision's sentence embedding (unit length, float32 bytes) under one embedding model, computed once in
    the background and reused by every near-duplicate check. A new model name means new rows, not stale ones."""

    revision = models.ForeignKey(InstructionRevision, on_delete=models.CASCADE, related_name="embeddings")
    model_name = models.CharField(max_length=300)
    vector = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["revision", "model_name"], name="embedding_unique_per_model"),
        ]

    def __str__(self) -> str:
        return f"{self.revision} embedding ({self.model_name})"

"""Admin pages for models and runs. Actions call the same services as the pages and commands."""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect

from collection.models import Benchmark
from core.errors import ApplicationError
from core.job_actions import JobAdmin, act_on_each
from evaluation.models import (
    BenchmarkSummary,
    LanguageModel,
    LeaderboardSnapshot,
    ModelCheck,
    ModelVariant,
    PhrasingResult,
    Prediction,
    ReleaseExport,
    RunTrigger,
    ScoringRun,
    SoftPrompt,
    TaskSummary,
    Truncation,
)
from evaluation.releases import export_jobs
from evaluation.releases.export import default_version, release_arguments_check
from evaluation.runs import budget, registry


class VariantInline(admin.TabularInline):
    model = ModelVariant
    extra = 0
    can_delete = False
    readonly_fields = ["kind", "created_at"]


class LanguageModelForm(forms.ModelForm):
    max_input_tokens = forms.IntegerField(
        min_value=1,
        required=False,
        label="Max input tokens",
        help_text="Longer prompts are cut to this many tokens, special tokens and a soft prompt's included. "
        "Blank: the check reads the model's own (its tokenizer's or config's). Fixed once it has predictions.",
    )
    # Optional, as in the command and the API: left out, a longer prompt keeps its end.
    truncation = forms.ChoiceField(
        choices=Truncation.choices,
        required=False,
        initial=Truncation.KEEP_END,
        help_text=LanguageModel._meta.get_field("truncation").help_text,
    )

    class Meta:
        model = LanguageModel
        fields = "__all__"

    def clean_truncation(self) -> str:
        return self.cleaned_data["truncation"] or Truncation.KEEP_END


@admin.register(LanguageModel)
class LanguageModelAdmin(admin.ModelAdmin):
    form = LanguageModelForm
    list_display = [
        "name",
        "family",
        "source",
        "revision",
        "prompt_format",
        "state",
        "is_active",
        "created_at",
    ]
    list_filter = ["state", "family", "prompt_format", "is_active", "tuned_on"]
    search_fields = ["name", "source", "description"]
    filter_horizontal = ["tuned_on", "benchmarks"]
    # What the model check found is the check's to write: "Check again" (an action) refreshes it.
    readonly_fields = [
        "state",
        "check_error",
        "checked_at",
        "special_tokens",
        "chat_template",
        "created_by",
        "created_at",
    ]
    inlines = [VariantInline]
    actions = ["check_again", "score_missing"]

    # Changing any of these makes it another model to load: it is checked again before anything is scored.
    SPEC_FIELDS = {"source", "revision", "family", "dtype", "prompt_format", "trust_remote_code"}
    INPUT_LIMIT_FIELDS = ["max_input_tokens", "truncation"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and registry.input_limit_is_fixed(obj):
            fields += self.INPUT_LIMIT_FIELDS
        return fields

    def change_view(self, request, object_id, form_url="", extra_context=None):
        model = self.get_object(request, object_id)
        if request.method == "GET" and model is not None and registry.input_limit_is_fixed(model):
            self.message_user(request, registry.INPUT_LIMIT_FIXED, level=messages.INFO)
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
            obj.state = LanguageModel.State.CHECKING  # never ready before a worker has loaded it
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        model = form.instance
        if change and not self.SPEC_FIELDS & set(form.changed_data):
            return
        # Registered (or changed) here as by the command: a GPU worker checks that it loads, and once it does,
        # the approved phrasings it lacks are queued on it.
        trigger = RunTrigger.MANUAL if change else RunTrigger.REGISTRATION
        try:
            registry.language_model_check(model=model, trigger=trigger, score=True, by=request.user)
        except ApplicationError as exc:
            self.message_user(request, str(exc), level=messages.WARNING)
            return
        self.message_user(
            request, f"{model.name} will be checked by a GPU worker; its scoring is queued once it loads."
        )

    @admin.action(description="Check again that the selected models load")
    def check_again(self, request, queryset):
        act_on_each(
            self,
            request,
            queryset,
            lambda model: registry.language_model_check_retry(model=model, by=request.user),
            "Queued checks of",
            "model",
        )

    @admin.action(description="Score approved phrasings not yet scored")
    def score_missing(self, request, queryset):
        for model in queryset:
            try:
                runs = registry.language_model_score_missing(model=model, by=request.user)
            except ApplicationError as exc:
                self.message_user(request, str(exc), level=messages.WARNING)
                continue
            # Over the budget the runs are planned for an admin to start (evaluation/runs/budget.py).
            self.message_user(request, f"{model.name}: {budget.bulk_summary(runs)}")


@admin.register(ModelCheck)
class ModelCheckAdmin(admin.ModelAdmin):
    """Checks are queued by registration, admin's "Check again" and the model page; here they are a record."""

    list_display = ["id", "model", "status", "trigger", "score", "worker", "created_at", "finished_at"]
    list_filter = ["status", "trigger"]
    search_fields = ["model__name", "error"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ScoringRun)
class ScoringRunAdmin(JobAdmin):
    list_display = [
        "id",
        "variant",
        "task",
        "status",
        "lane",
        "done_cells",
        "total_cells",
        "trigger",
        "created_at",
    ]
    list_filter = ["status", "lane", "trigger", "variant__model"]
    search_fields = ["error", "worker"]
    raw_id_fields = ["task", "instruction", "revisions"]
    readonly_fields = [
        "status",
        "lane",
        "plan",
        "total_cells",
        "cached_cells",
        "done_cells",
        "chunks",
        "cells_per_second",
        "error",
        "config",
        "claim_token",
        "claimed_by_task",
        "worker",
        "attempts",
        "heartbeat_at",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]


class ResultAdmin(admin.ModelAdmin):
    """Results are computed by workers and imports, never edited by hand: viewable, and deletable by admins."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Prediction)
class PredictionAdmin(ResultAdmin):
    list_display = ["id", "variant", "revision", "instance", "predicted", "correct", "created_at"]
    list_filter = ["correct", "variant"]
    raw_id_fields = ["variant", "revision", "instance", "run"]


@admin.register(ModelVariant)
class ModelVariantAdmin(ResultAdmin):
    list_display = ["id", "model", "kind", "provenance", "created_at"]
    list_filter = ["kind", "model"]
    search_fields = ["model__name", "provenance"]


@admin.register(PhrasingResult)
class PhrasingResultAdmin(ResultAdmin):
    list_display = [
        "id",
        "variant",
        "task",
        "revision",
        "accuracy",
        "n_total",
        "complete",
        "source",
        "updated_at",
    ]
    list_filter = ["source", "complete", "variant__model", "task__benchmark"]
    search_fields = ["task__slug", "revision__template", "provenance"]
    raw_id_fields = ["variant", "revision", "task"]


@admin.register(TaskSummary)
class TaskSummaryAdmin(ResultAdmin):
    list_display = ["id", "variant", "task", "phrasing_set", "updated_at"]
    list_filter = ["phrasing_set", "variant__model", "task__benchmark"]
    search_fields = ["task__slug", "variant__model__name"]
    raw_id_fields = ["variant", "task"]


@admin.register(BenchmarkSummary)
class BenchmarkSummaryAdmin(ResultAdmin):
    list_display = ["id", "variant", "benchmark", "phrasing_set", "task_kind", "updated_at"]
    list_filter = ["phrasing_set", "task_kind", "benchmark", "variant__model"]
    search_fields = ["variant__model__name"]


@admin.register(SoftPrompt)
class SoftPromptAdmin(JobAdmin):
    list_display = [
        "id",
        "model",
        "status",
        "trigger",
        "steps_done",
        "steps_total",
        "pool_size",
        "created_at",
    ]
    list_filter = ["status", "trigger", "model"]
    search_fields = ["model__name", "error", "artifact"]
    raw_id_fields = ["training_revisions", "heldout_revisions", "variant"]
    readonly_fields = [
        "variant",
        "status",
        "config",
        "split_seed",
        "pool_size",
        "seen",
        "curve",
        "steps_done",
        "steps_total",
        "artifact",
        "error",
        "claim_token",
        "claimed_by_task",
        "worker",
        "attempts",
        "heartbeat_at",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]

    def has_add_permission(self, request):
        return False  # queued from the model page, the command or automatically, with a validated config


@admin.register(LeaderboardSnapshot)
class LeaderboardSnapshotAdmin(admin.ModelAdmin):
    """Read-only: a snapshot is cited by its address, so nobody edits or deletes one here (docs/snapshots.md).
    Snapshots are made from a leaderboard's "Freeze this view", POST /api/snapshots/ or the
    `snapshot_leaderboard` command."""

    list_display = [
        "public_id",
        "benchmark_slug",
        "phrasing_set",
        "task_kind",
        "sort",
        "created_at",
        "created_by",
    ]
    list_filter = ["benchmark_slug", "phrasing_set"]
    search_fields = ["public_id", "title", "sha256"]
    date_hierarchy = "created_at"
    fields = [
        "public_id",
        "benchmark",
        "benchmark_slug",
        "benchmark_name",
        "phrasing_set",
        "task_kind",
        "sort",
        "descending",
        "with_partial",
        "data_version",
        "sha256",
        "title",
        "note",
        "created_by",
        "created_at",
        "payload",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReleaseExportForm(forms.ModelForm):
    """What an admin asks a release for; checked as the command and the API check it, before anything is
    queued (export.release_arguments_check)."""

    benchmark_choices = forms.ModelMultipleChoiceField(
        queryset=Benchmark.objects.order_by("slug"),
        required=False,
        label="Benchmarks",
        help_text="None chosen: every benchmark.",
    )
    version = forms.CharField(
        max_length=100, required=False, help_text="Blank: the UTC time, 20250130T120000Z."
    )

    class Meta:
        model = ReleaseExport
        fields = ["name", "version", "license"]

    def clean(self):
        data = super().clean()
        data["version"] = data.get("version") or default_version()
        slugs = [b.slug for b in data.get("benchmark_choices") or []]
        try:
            release_arguments_check(
                benchmarks=slugs, name=data.get("name"), version=data["version"], license=data.get("license")
            )
        except ApplicationError as exc:
            raise forms.ValidationError(str(exc)) from None
        data["benchmarks"] = slugs
        return data


@admin.register(ReleaseExport)
class ReleaseExportAdmin(JobAdmin):
    """Add asks a worker for a dataset release in RELEASES_DIR (docs/releases.md); the rows are the record,
    with "Retry selected release exports" for a failed one. The files are served by /api/releases/. Delete
    (a finished export) removes its directory too."""

    form = ReleaseExportForm
    list_display = ["id", "directory", "status", "counts", "created_by", "created_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["name", "version", "error", "data_version"]
    readonly_fields = [
        "benchmarks",
        "status",
        "error",
        "counts",
        "data_version",
        "worker",
        "attempts",
        "heartbeat_at",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "version", "benchmark_choices", "license"]
        return ["name", "version", "license", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["name", "version", "license", *self.readonly_fields]

    def has_change_permission(self, request, obj=None):
        return obj is None or super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        # A queued or running export's worker may be writing its directory (export_jobs.release_export_delete).
        return (obj is None or not obj.is_active) and super().has_delete_permission(request, obj)

    def get_actions(self, request):
        # One at a time, through the change page's Delete, so each deletion removes its files through the service.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_model(self, request, obj):
        export_jobs.release_export_delete(obj)

    def delete_view(self, request, object_id, extra_context=None):
        # A refusal (its worker started since the page was drawn, files that cannot be removed) is a message on
        # the change page, not a 500; the deletion's log entry is rolled back with it.
        try:
            return super().delete_view(request, object_id, extra_context)
        except ApplicationError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return redirect("admin:evaluation_releaseexport_change", object_id)

    def save_model(self, request, obj, form, change):
        # Through the service, which queues the worker's job; the admin then shows the row it made.
        made = export_jobs.release_export_request(
            benchmarks=form.cleaned_data["benchmarks"],
            name=obj.name,
            version=form.cleaned_data["version"],
            license=obj.license,
            by=request.user,
        )
        obj.pk = made.pk
        obj.refresh_from_db()

"""Admin pages for the collection. Review actions call the same service as the review queue, so the same
rules hold here: nobody reviews their own phrasing, rejections and edit requests carry a reason, and only a
phrasing waiting for review is decided on (an approved one can only be retired)."""

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.text import Truncator

from collection import services
from collection.models import (
    Benchmark,
    Collection,
    Instance,
    Instruction,
    InstructionRevision,
    PhrasingEmbedding,
    PhrasingTag,
    Task,
)
from core.parsing import parse_id

# The change list and the reason page carry, for each phrasing shown, the revision whose text they showed
# (`read_revision_<id>`): a decision applies to that text only, as in the review queue and the API.
READ_REVISION = "read_revision_"


@admin.register(Benchmark)
class BenchmarkAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "source", "created_at"]
    search_fields = ["slug", "name"]


# A task's fields that its predictions and figures depend on: changed here they would leave stored
# predictions, accuracies and benchmark rows standing for another task. Its evaluation sample is changed on the
# task's page (collection.services.task_eval_sample_set), which scores what the new sample lacks.
TASK_SCORED_FIELDS = [
    "benchmark",
    "parent",
    "slug",
    "kind",
    "answer_format",
    "input_fields",
    "required_fields",
    "label_space",
    "max_options",
    "prompt_parts",
    "eval_sample_size",
    "eval_sample_seed",
]


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "benchmark", "parent", "kind", "answer_format", "max_options"]
    list_filter = ["benchmark", "kind", "answer_format"]
    search_fields = ["slug", "name", "external_id"]
    raw_id_fields = ["parent"]

    def get_readonly_fields(self, request, obj=None):
        # A new task has nothing scored yet; an existing one keeps what its results were computed for.
        return [] if obj is None else TASK_SCORED_FIELDS


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    """Not added or changed here: instances come from the importers, and an edited gold or option would leave
    every stored prediction of the instance, and the accuracies made of them, wrong. Deleting stays allowed:
    admin asks for it on every instance a task's or benchmark's deletion takes with it."""

    list_display = ["source_id", "task", "split", "gold"]
    list_filter = ["split", "task__benchmark"]
    search_fields = ["source_id"]
    raw_id_fields = ["task"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "kind"]


@admin.register(PhrasingTag)
class PhrasingTagAdmin(admin.ModelAdmin):
    """The tag vocabulary: admins add tags; authors and curators pick from it."""

    list_display = ["slug", "name", "description"]
    search_fields = ["slug", "name"]


class RevisionInline(admin.TabularInline):
    model = InstructionRevision
    extra = 0
    can_delete = False
    # Revisions are immutable: results are keyed on them.
    readonly_fields = ["number", "template", "labels", "content_hash", "created_by", "created_at"]
    exclude = ["normalised_hash"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Instruction)
class InstructionAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "text", "collection", "status", "author", "source", "updated_at"]
    list_select_related = ["task__benchmark", "collection", "author", "current_revision"]
    list_filter = ["status", "collection", "task__benchmark", "text_available", "tags"]
    search_fields = ["external_id", "current_revision__template", "author__username", "task__slug"]
    raw_id_fields = ["task", "author", "reviewer", "current_revision"]
    # Status changes go through the review actions (they queue scoring and refresh the leaderboards); the text
    # changes by its author's edits only.
    readonly_fields = [
        "status",
        "reviewer",
        "review_reason",
        "reviewed_at",
        "current_revision",
        "reviewed_revision",
    ]
    inlines = [RevisionInline]
    actions = ["approve", "request_edit", "reject", "retire"]
    # Who wrote a phrasing, where from and for what are facts of its creation. Were they editable, a curator
    # could credit their own phrasing to someone else and then approve it.
    fixed_after_creation = ["task", "collection", "author", "source"]

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            readonly += [f for f in self.fixed_after_creation if f not in readonly]
        return readonly

    @admin.display(description="Text (revision)")
    def text(self, instruction: Instruction) -> str:
        revision = instruction.current_revision
        if revision is None:
            return "—"
        return format_html(
            'r{} <input type="hidden" name="{}" value="{}">{}',
            revision.number,
            f"{READ_REVISION}{instruction.pk}",
            revision.pk,
            Truncator(revision.template).chars(100),
        )

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        # Write only what the form changed. A full save would write back the status, reviewer and text as
        # they were when the form was posted, undoing a decision or an edit committed in the meantime.
        fields = [name for name in form.changed_data if name not in self.get_readonly_fields(request, obj)]
        if fields:
            obj.save(update_fields=[*fields, "updated_at"])

    def has_add_permission(self, request) -> bool:
        # Phrasings are created by writing, uploading or importing them, which validate the text and store
        # its first revision; one added here would have no text and an author of the adder's choosing.
        return False

    @admin.action(description="Approve selected phrasings", permissions=["change"])
    def approve(self, request, queryset):
        return self._review(request, queryset, Instruction.Status.APPROVED, "approved")

    @admin.action(description="Ask the authors for an edit…", permissions=["change"])
    def request_edit(self, request, queryset):
        return self._review(request, queryset, Instruction.Status.NEEDS_EDIT, "sent back for an edit")

    @admin.action(description="Reject selected phrasings…", permissions=["change"])
    def reject(self, request, queryset):
        return self._review(request, queryset, Instruction.Status.REJECTED, "rejected")

    @admin.action(description="Retire selected phrasings (leave the leaderboards)", permissions=["change"])
    def retire(self, request, queryset):
        return self._review(request, queryset, Instruction.Status.RETIRED, "retired")

    def _review(self, request, queryset, status: str, verb: str):
        needs_reason = status in (Instruction.Status.REJECTED, Instruction.Status.NEEDS_EDIT)
        reason = request.POST.get("reason", "").strip()
        if needs_reason and "confirm" not in request.POST:
            # An intermediate page asks for the reason, as Django's delete confirmation does.
            return TemplateResponse(
                request,
                "admin/collection/instruction/review_reason.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Give a reason",
                    "queryset": queryset,
                    "action": request.POST["action"],
                    "verb": verb,
                    "opts": self.model._meta,
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                },
            )
        # Each decision names the text the page showed; a phrasing edited since, or one whose text the page
        # did not show ("select all" across pages), is left out with the reason.
        chosen = list(queryset.select_related("current_revision"))
        read = {i.pk: parse_id(request.POST.get(f"{READ_REVISION}{i.pk}")) or 0 for i in chosen}
        outcomes = services.instructions_review_bulk(
            instructions=chosen, reviewer=request.user, status=status, reason=reason, revisions=read
        )
        for outcome in outcomes:
            if outcome.stale and not read[outcome.instruction.pk]:
                # No revision 0 exists: the service refused it as edited, but the page simply did not show it.
                outcome.error = (
                    "its text was not on the page you decided from, so nothing was decided; open the page "
                    "of the list that shows it and decide there."
                )
        done = sum(not o.error for o in outcomes)
        for outcome in outcomes:
            if outcome.error:
                self.message_user(
                    request, services.about(outcome.instruction.id, outcome.error), messages.ERROR
                )
        if done:
            self.message_user(request, f"{done} phrasing(s) {verb}.", messages.SUCCESS)
        return None


@admin.register(PhrasingEmbedding)
class PhrasingEmbeddingAdmin(admin.ModelAdmin):
    list_display = ["id", "revision", "model_name", "created_at"]
    list_filter = ["model_name"]
    search_fields = ["revision__template"]
    raw_id_fields = ["revision"]
    exclude = ["vector"]

    # Derived data, written by the embedding job.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

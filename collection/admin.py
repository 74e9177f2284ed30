from django.contrib import admin

from collection.models import Benchmark, Collection, Instance, Instruction, InstructionRevision, Task


@admin.register(Benchmark)
class BenchmarkAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "source", "created_at"]
    search_fields = ["slug", "name"]


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "benchmark", "parent", "kind", "answer_format", "max_options"]
    list_filter = ["benchmark", "kind", "answer_format"]
    search_fields = ["slug", "name", "external_id"]
    raw_id_fields = ["parent"]


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    list_display = ["source_id", "task", "split", "gold"]
    list_filter = ["split", "task__benchmark"]
    search_fields = ["source_id"]
    raw_id_fields = ["task"]


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "kind"]


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
    list_display = ["id", "task", "collection", "status", "author", "source", "external_id", "updated_at"]
    list_filter = ["status", "collection", "task__benchmark"]
    search_fields = ["external_id", "current_revision__template", "author__username"]
    raw_id_fields = ["task", "author", "reviewer", "current_revision"]
    inlines = [RevisionInline]

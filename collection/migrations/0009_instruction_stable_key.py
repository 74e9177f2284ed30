import hashlib

from django.db import migrations, models
from django.db.models import Q


def fill_stable_keys(apps, schema_editor):
    """Existing phrasings get the key of their first revision's text (collection.models.phrasing_key, spelt
    out here because migrations must not import the models they migrate)."""
    Instruction = apps.get_model("collection", "Instruction")
    InstructionRevision = apps.get_model("collection", "InstructionRevision")
    first = dict(
        InstructionRevision.objects.filter(number=1).values_list("instruction_id", "template").iterator()
    )
    rows = Instruction.objects.select_related("task__benchmark").only(
        "id", "task__slug", "task__benchmark__slug"
    )
    changed = []
    for instruction in rows.iterator(chunk_size=2000):
        template = first.get(instruction.id, f"instruction {instruction.id}")
        key = f"{instruction.task.benchmark.slug}\x1f{instruction.task.slug}\x1f{template}"
        instruction.stable_key = hashlib.sha256(key.encode()).hexdigest()
        changed.append(instruction)
    Instruction.objects.bulk_update(changed, ["stable_key"], batch_size=2000)


class Migration(migrations.Migration):
    dependencies = [("collection", "0008_instruction_reviewed_revision")]

    operations = [
        migrations.AddField(
            model_name="instruction",
            name="stable_key",
            field=models.CharField(
                default="",
                editable=False,
                help_text="phrasing_key() of its benchmark, task and first text: the same on every database.",
                max_length=64,
            ),
            preserve_default=False,
        ),
        migrations.RunPython(fill_stable_keys, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="instruction",
            constraint=models.CheckConstraint(condition=~Q(stable_key=""), name="instruction_has_stable_key"),
        ),
    ]

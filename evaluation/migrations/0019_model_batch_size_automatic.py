"""LanguageModel.batch_size becomes optional (issue 28): blank means automatic, batches filled to a token budget
found per model on a GPU and 16 items on a CPU. Models holding 16, the old default that every registration got
unless it asked for another size, become automatic: on a CPU that is the same 16, on a GPU the token budget.
Reversing gives blank models 16 again."""

from django.db import migrations, models

OLD_DEFAULT = 16


def to_automatic(apps, schema_editor):
    apps.get_model("evaluation", "LanguageModel").objects.filter(batch_size=OLD_DEFAULT).update(
        batch_size=None
    )


def to_old_default(apps, schema_editor):
    apps.get_model("evaluation", "LanguageModel").objects.filter(batch_size=None).update(
        batch_size=OLD_DEFAULT
    )


class Migration(migrations.Migration):
    dependencies = [
        ("evaluation", "0018_summary_plural_names"),
    ]

    operations = [
        migrations.AlterField(
            model_name="languagemodel",
            name="batch_size",
            field=models.PositiveSmallIntegerField(
                blank=True,
                default=None,
                help_text="Items per batch, fixed (halves on out-of-memory). Blank: automatic, batches filled to a "
                "token budget found per model on a GPU, 16 items on a CPU.",
                null=True,
            ),
        ),
        migrations.RunPython(to_automatic, to_old_default),
    ]

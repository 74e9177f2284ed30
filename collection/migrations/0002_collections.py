from django.db import migrations

# The collections every installation starts with. Observed/unobserved is decided per model by which of
# these it was tuned on (the model registry records that).
COLLECTIONS = [
    ("crowd", "Crowd", "crowd", "Phrasings written by practitioners, here or in the study."),
    ("benchmark-default", "Benchmark default", "benchmark_default", "The benchmark's own prompt."),
    ("flan", "FLAN", "tuning", "FLAN / Flan 2022 collection templates."),
    ("niv2", "NIV2", "tuning", "Super-NaturalInstructions (NIV2) task definitions."),
    ("t0", "P3 / T0", "tuning", "PromptSource templates used to train T0."),
    ("alpaca", "Alpaca", "tuning", "Self-instruct style instructions used to tune Alpaca."),
]


def create(apps, schema_editor):
    Collection = apps.get_model("collection", "Collection")
    for slug, name, kind, description in COLLECTIONS:
        Collection.objects.get_or_create(
            slug=slug, defaults={"name": name, "kind": kind, "description": description}
        )


class Migration(migrations.Migration):
    dependencies = [("collection", "0001_initial")]
    operations = [migrations.RunPython(create, migrations.RunPython.noop)]

from django.contrib.auth.management import create_permissions
from django.db import migrations

# The result models came after the role permissions were granted: admins manage them, curators look.
MODELS = ["phrasingresult", "tasksummary", "benchmarksummary"]


def grant(apps, schema_editor):
    config = apps.get_app_config("evaluation")
    config.models_module = True
    create_permissions(config, verbosity=0)
    config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.filter(content_type__app_label="evaluation", content_type__model__in=MODELS)
    Group.objects.get_or_create(name="admin")[0].permissions.add(*perms)
    Group.objects.get_or_create(name="curator")[0].permissions.add(
        *perms.filter(codename__startswith="view_")
    )


class Migration(migrations.Migration):
    dependencies = [("evaluation", "0003_results_and_summaries"), ("core", "0002_roles")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

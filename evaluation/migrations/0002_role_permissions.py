from django.contrib.auth.management import create_permissions
from django.db import migrations

# Admin pages per role (what a role may do in the app is decided in core/roles.py). Admins manage
# models and runs; curators may look at them.
ROLE_PERMISSIONS = {
    "admin": ["*"],
    "curator": ["view_languagemodel", "view_modelvariant", "view_scoringrun", "view_prediction"],
}


def grant(apps, schema_editor):
    # Permissions are normally created after all migrations; make sure evaluation's exist now.
    config = apps.get_app_config("evaluation")
    config.models_module = True
    create_permissions(config, verbosity=0)
    config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codes in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        perms = Permission.objects.filter(content_type__app_label="evaluation")
        if codes != ["*"]:
            perms = perms.filter(codename__in=codes)
        group.permissions.add(*perms)


class Migration(migrations.Migration):
    dependencies = [("evaluation", "0001_initial"), ("core", "0002_roles")]
    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]

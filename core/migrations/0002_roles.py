from django.contrib.auth.management import create_permissions
from django.db import migrations

# Django permissions per role, for admin access. What a role may do in the app itself is decided in
# core/roles.py; these only open the matching admin pages.
ROLE_PERMISSIONS = {
    "author": [],
    "curator": [
        "collection.view_benchmark",
        "collection.view_task",
        "collection.view_instance",
        "collection.view_collection",
        "collection.view_instruction",
        "collection.change_instruction",
        "collection.view_instructionrevision",
    ],
    "admin": ["collection.*", "evaluation.*", "core.*"],
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after migrations; make sure they exist for a fresh database.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, codes in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for code in codes:
            app_label, codename = code.split(".")
            perms = Permission.objects.filter(content_type__app_label=app_label)
            if codename != "*":
                perms = perms.filter(codename=codename)
            group.permissions.add(*perms)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0001_initial"),
        ("collection", "0002_collections"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]

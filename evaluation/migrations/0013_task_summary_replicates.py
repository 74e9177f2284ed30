from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("evaluation", "0012_lanes_plans_and_benchmark_limits"),
    ]

    operations = [
        migrations.AddField(
            model_name="tasksummary",
            name="replicates",
            field=models.BinaryField(editable=False, null=True),
        ),
    ]

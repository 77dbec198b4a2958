from django.db import migrations, models
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce


def count_busy_steps(apps, schema_editor):
    """Runs in flight during the upgrade start from their true count, not 0."""
    Run = apps.get_model("workflows", "Run")
    StepRun = apps.get_model("workflows", "StepRun")
    busy = (
        StepRun.objects.filter(run=OuterRef("pk"), status__in=["PENDING", "RUNNING"])
        .values("run")
        .annotate(n=Count("pk"))
        .values("n")
    )
    Run.objects.filter(~Q(status__in=["COMPLETED", "FAILED", "CANCELLED"])).update(
        steps_busy=Coalesce(Subquery(busy), 0)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("workflows", "0002_steprun_run_status"),
    ]

    operations = [
        migrations.AddField(
            model_name="run",
            name="steps_busy",
            field=models.PositiveIntegerField(
                default=0,
                help_text="Step runs PENDING or RUNNING (kept by the engine under the run lock).",
            ),
        ),
        migrations.RunPython(count_busy_steps, migrations.RunPython.noop),
    ]

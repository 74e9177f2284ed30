import pytest
from django.core.management import call_command

from collection.models import Collection, Task
from evaluation.runs import registry


@pytest.fixture
def demo_tiny_t5(db, tiny_models):
    """The demo benchmark (4 instances per task's evaluation sample) and a tiny T5, registered and ready, as a
    worker's check would leave it: only ready models are scored and aligned."""
    call_command("load_demo")
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=4)
    return registry.language_model_register(
        name="tiny-t5",
        source=str(tiny_models["t5"]),
        family="seq2seq",
        tuned_on=[Collection.objects.get(slug="demotune")],
        check_now=True,
    )

"""A real browser for end-to-end tests: Debian's headless Chromium driven by Playwright (never a downloaded
browser). Screenshots go to test-output/screenshots/ for people to look at."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(
            "Debian's chromium is not installed (apt-get install chromium chromium-driver; .ci/run does)"
        )
    # Playwright's sync API runs an event loop in this thread; the Django calls the tests make are still
    # synchronous, so Django's async-safety guard does not apply.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    # Chromium reports what the Content-Security-Policy blocked (an inline script, eval) on the console.
    tab.on(
        "console",
        lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None,
    )
    tab.errors = errors
    yield tab
    context.close()


@pytest.fixture
def screenshot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(tab, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        tab.screenshot(path=str(path), full_page=True)
        return path

    return take


PASSWORD = "a long demo passphrase 42"


@pytest.fixture
def demo_scored(tiny_models):
    """The demo benchmark (8 instances a task) scored by tiny-t5, tuned on DemoTune, and a `create_user(name,
    role)` to add accounts with PASSWORD. Celery runs eagerly in tests: the model scores every approved
    phrasing here."""
    from django.contrib.auth import get_user_model

    from collection.demo import load_demo
    from collection.models import Collection, Task
    from core import services as core_services
    from evaluation.runs import registry

    load_demo()
    Task.objects.filter(benchmark__slug="demo").update(eval_sample_size=8)
    registry.language_model_register(
        name="tiny-t5",
        source=str(tiny_models["t5"]),
        family="seq2seq",
        tuned_on=[Collection.objects.get(slug="demotune")],
    )

    def create_user(name: str, role: str):
        user = get_user_model().objects.create_user(username=name, password=PASSWORD)
        core_services.user_role_set(user=user, role=role)
        return user

    return create_user

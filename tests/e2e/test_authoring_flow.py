"""The crowdsourcing side in a real browser: a newcomer signs up, writes a phrasing with the live preview,
sees a template error and the near-duplicate warning, submits; a curator approves it from the queue; the
phrasing appears on the task page and its scoring run starts (and, with Celery eager in tests, finishes)."""

from __future__ import annotations

import pytest

from collection.models import Instruction
from core import roles
from evaluation.models import ScoringRun
from tests.e2e.conftest import PASSWORD

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.e2e]


PHRASING = "Is {number} even? Answer yes or no."


@pytest.fixture
def demo_with_model(demo_scored):
    demo_scored("carol", roles.CURATOR)


def _type(page, selector: str, text: str) -> None:
    page.fill(selector, "")
    page.type(selector, text, delay=5)


def test_an_author_writes_a_phrasing_and_a_curator_approves_it(
    live_server, browser, page, screenshot, demo_with_model
):
    # Sign up.
    page.goto(f"{live_server.url}/")
    page.click("text=Sign up")
    page.fill("#id_username", "dana")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    screenshot(page, "01-signup")
    page.click("button:has-text('Create account')")
    page.wait_for_selector("text=My phrasings")

    # Find a task and open the authoring form.
    page.click("text=Demo")
    page.click("text=Parity")
    screenshot(page, "02-task")
    page.click("text=Write a phrasing")

    # A typo in a placeholder: the preview says what to fix.
    _type(page, "#id_template", "Is {numbr} even?")
    page.wait_for_selector("#template-check .problems.bad >> text=Did you mean {number}?")  # at the field
    screenshot(page, "03-author-invalid")

    # A valid phrasing close to an approved one: rendered on real instances, flagged as a near duplicate.
    _type(page, "#id_template", PHRASING)
    page.wait_for_selector("#template-check >> text=The phrasing is valid for this task.")
    page.wait_for_selector("#preview >> text=Near duplicate")
    assert page.locator("#preview .badge.warn", has_text="near duplicate").count() >= 1
    assert page.locator("#preview .card pre.prompt").first.inner_text().startswith("Is ")
    screenshot(page, "04-author-near-duplicate")

    page.click("button:has-text('Submit for review')")
    page.wait_for_url("**/me/phrasings/")
    assert "Pending review" in page.inner_text("#my-phrasings")
    screenshot(page, "05-my-phrasings-pending")
    phrasing = Instruction.objects.get(author__username="dana")
    assert phrasing.status == "pending" and phrasing.template == PHRASING

    # The curator reviews it in their own session.
    curator_context = browser.new_context(viewport={"width": 1280, "height": 900})
    curator = curator_context.new_page()
    curator.goto(f"{live_server.url}/accounts/login/")
    curator.fill("#id_username", "carol")
    curator.fill("#id_password", PASSWORD)
    curator.click("button[type=submit]")
    curator.click("text=Review queue")
    item = curator.locator(f"#item-{phrasing.id}")
    item.wait_for()
    assert "Nearest approved phrasings" in item.inner_text()
    screenshot(curator, "06-curation-queue")
    # Rejecting without a reason is refused (400): the answer is shown where the curator acted.
    item.locator("button:has-text('Reject')").click()
    curator.wait_for_selector(f"#item-{phrasing.id} [role=alert] >> text=Say why the phrasing is rejected")
    screenshot(curator, "06b-curation-reject-needs-a-reason")
    item = curator.locator(f"#item-{phrasing.id}")
    item.locator("button:has-text('Approve')").click()
    curator.wait_for_selector(f"#item-{phrasing.id}.decided >> text=approved")
    screenshot(curator, "07-curation-approved")
    curator_context.close()

    phrasing.refresh_from_db()
    assert phrasing.status == "approved" and phrasing.reviewer.username == "carol"
    runs = ScoringRun.objects.filter(instruction=phrasing)
    assert runs.count() == 1
    assert runs.get().status == "succeeded"  # Celery runs eagerly in tests: scored inside the approval

    # The phrasing is on the task page, and its author sees how it did.
    page.goto(f"{live_server.url}/b/demo/t/parity/")
    assert page.locator(f"#phrasing-{phrasing.id}").count() == 1
    screenshot(page, "08-task-with-new-phrasing")
    page.goto(f"{live_server.url}/me/phrasings/")
    card = page.locator(f"#phrasing-{phrasing.id}")
    assert "Approved" in card.inner_text()
    assert card.locator("table tbody tr").count() == 1
    assert "tiny-t5" in card.inner_text() and " of 7" in card.inner_text()
    screenshot(page, "09-my-phrasings-scored")
    assert page.errors == []


def test_a_curator_uploads_a_file_of_phrasings(live_server, page, screenshot, demo_with_model):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "carol")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.click("text=Review queue")
    page.click("text=Upload a file of phrasings")
    before = Instruction.objects.count()

    # Saved by a spreadsheet in Latin-1: refused, saying why, nothing imported.
    rows = 'task,template,source\ndemo/parity,"Is {number} pair? Réponds yes ou no.",atelier\n'
    page.set_input_files(
        "#id_file", files=[{"name": "atelier.csv", "mimeType": "text/csv", "buffer": rows.encode("latin-1")}]
    )
    page.click("button:has-text('Upload and check')")
    error = page.locator("pre.error")
    assert "atelier.csv: not UTF-8 text (byte 0xe9" in error.inner_text()
    assert "Nothing was imported." in error.inner_text()
    assert Instruction.objects.count() == before
    screenshot(page, "10-upload-refused")

    # Re-saved as UTF-8: imported into the review queue.
    page.set_input_files(
        "#id_file", files=[{"name": "atelier.csv", "mimeType": "text/csv", "buffer": rows.encode()}]
    )
    page.click("button:has-text('Upload and check')")
    page.wait_for_url(f"{live_server.url}/curate/")
    assert "Imported atelier.csv: phrasings created: 1." in page.locator(".messages").inner_text()
    uploaded = Instruction.objects.get(source="atelier")
    assert uploaded.status == "pending" and page.locator(f"#item-{uploaded.id}").count() == 1
    screenshot(page, "11-upload-imported")
    assert page.errors == []


def test_the_preview_after_the_session_ended_says_so_and_keeps_the_text(
    live_server, page, screenshot, demo_with_model
):
    """Logged out in another tab, the next keystroke's preview used to swap the whole login page into the
    panel; its autofocus took the following keystrokes into the username box."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "carol")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/b/demo/t/parity/write/")
    _type(page, "#id_template", "Is {number} even?")
    page.wait_for_selector("#template-check >> text=The phrasing is valid for this task.")
    page.context.clear_cookies(
        name="sessionid"
    )  # as a logout in another tab, or an expired session, leaves it
    page.type("#id_template", " Answer yes or no.", delay=5)
    page.wait_for_selector(".htmx-error >> text=Your session has ended")
    page.type("#id_template", " Thanks.", delay=5)
    screenshot(page, "06-author-session-ended")
    assert page.input_value("#id_template") == "Is {number} even? Answer yes or no. Thanks."
    assert page.locator("#preview #id_username").count() == 0 and page.locator("#id_password").count() == 0
    assert page.evaluate("document.activeElement.id") == "id_template"
    # Logged in again in another tab (a new CSRF token): the page goes on with the current token and its text.
    other = page.context.new_page()
    other.goto(f"{live_server.url}/accounts/login/")
    other.fill("#id_username", "carol")
    other.fill("#id_password", PASSWORD)
    other.click("button[type=submit]")
    other.wait_for_selector("text=Log out")
    other.close()
    with page.expect_response(lambda response: "/preview/" in response.url) as preview:
        page.type("#id_template", " Be brief.", delay=5)
    assert preview.value.status == 200  # 403 with the token the page was rendered with
    page.click("button:has-text('Submit for review')")
    page.wait_for_url("**/me/phrasings/")
    assert Instruction.objects.get(author__username="carol").template.endswith("Thanks. Be brief.")

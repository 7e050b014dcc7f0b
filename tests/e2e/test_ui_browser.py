"""The review pages in a real browser: Playwright driving Debian's headless Chromium against real gunicorn.

A real dramatiq worker in this process runs the pipeline on the same SQLite file, Redis and
artifacts folder as the gunicorn API, so a prompt sent from the page really runs steps 4 and 5
and the page hears about it through the progress stream. Screenshots of the library and of an
item page are saved under ``AUTOLOG_TEST_ARTIFACTS`` (default ``var/test-artifacts/``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from autolog.progress import ProgressChannel, ProgressEvent
from autolog.settings import Settings
from autolog.statuses import AUDIO_ONLY, Status
from autolog.store import NewEvent, NewItem, Store
from tests.conftest import REPO, SampleClips, log_through_pipeline, wait_for
from tests.search_items import log_item
from tests.web.conftest import KEY, serve_api  # noqa: F401  (serve_api is a fixture)
from web.auth import SESSION_COOKIE

pytestmark = pytest.mark.slow

#: Keep Chromium off the network and out of a sandbox it cannot have as root.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

#: Where the screenshots go.
SCREENSHOTS = Path(os.environ.get("AUTOLOG_TEST_ARTIFACTS") or REPO / "var" / "test-artifacts")

#: How long the page may take to show what a worker did, in ms.
PIPELINE_MS = 90_000

#: Where a page's clock starts in the tests that move it by hand (``page.clock``), in ms since the epoch.
PAGE_CLOCK_START = 1_800_000_000_000

#: How long a search's answer may take to show on a loaded 2-core machine (a search is a few ms idle), in ms.
SEARCH_MS = 15_000


@pytest.fixture
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (never a browser Playwright downloads)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    executable = shutil.which("chromium")
    assert executable, "chromium is missing: `make test` installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@dataclass(frozen=True)
class Footage:
    """A logged clip with speech, a clip waiting for its prompt, and the API serving both.

    ``spoken`` is a word of the speech clip's transcript found in no other text of either item.
    """

    base: str
    speech: str
    waiting: str
    timecodes: list[str]
    transcript: str
    spoken: str


@pytest.fixture
def footage(context: Any, drain: Callable[..., None], test_media: SampleClips, unique_id: Callable[[str], str],
            serve_api: Callable[[dict[str, str]], str]) -> Footage:  # noqa: F811
    from pipelines import actions  # imports ``actors``, which must wait for pytest_configure's environment

    speech, waiting = unique_id("SPEECH"), unique_id("WAIT")
    log_through_pipeline(context, drain, test_media.path("speech.mp4"), speech)
    actions.submit(context, [NewItem(waiting, str(test_media.path("cuts_noaudio.mp4")))])
    drain()
    store = context.store
    assert store.items.get(waiting).status is Status.AWAITING_USER_INPUT
    base = serve_api({"DATABASE_URL": store.engine.url.render_as_string(hide_password=False),
                      "AUTOLOG_ARTIFACTS_DIR": str(context.settings.artifacts_root), "AUTOLOG_API_THREADS": "8"})
    frames = store.results.frames(speech)
    transcript = " ".join(segment.text for segment in store.results.transcript(speech))
    elsewhere = " ".join([speech, waiting, str(test_media.path("speech.mp4")), str(test_media.path("cuts_noaudio.mp4")),
                          *(frame.description + " " + " ".join(frame.keywords) for frame in frames)]).lower()
    spoken = next(word for word in transcript.split() if len(word) >= 4 and word.lower() not in elsewhere)
    return Footage(base=base, speech=speech, waiting=waiting, timecodes=[frame.timecode for frame in frames],
                   transcript=transcript, spoken=spoken)


def sign_in(page: Page, base: str, target: str) -> None:
    """Open ``target``, get sent to the login form, sign in with the key, and land back on ``target``."""
    page.goto(base + target)
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    page.screenshot(path=SCREENSHOTS / "ui-login.png")
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(base + target.rstrip("/")) + "/?$"))


def test_a_logger_signs_in_reviews_an_item_and_prompts_another(footage: Footage, chromium: Browser) -> None:
    session = chromium.new_context(viewport={"width": 1366, "height": 900})
    page = session.new_page()

    sign_in(page, footage.base, "/ui/")
    cookie = next(cookie for cookie in page.context.cookies() if cookie["name"] == SESSION_COOKIE)
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"]) == (True, True, "Lax")
    cards = page.locator(".card")
    expect(cards).to_have_count(2)
    speech_card = page.locator(f'.card[data-item-id="{footage.speech}"]')
    assert speech_card.get_by_role("link").get_attribute("href") == f"/ui/items/{footage.speech}"
    expect(speech_card.locator('[data-role="status"]')).to_have_text(Status.AVID_DESCRIPTION.value)
    expect(speech_card.get_by_role("img")).to_have_attribute("alt", f"Poster frame of {footage.speech}")
    assert speech_card.get_by_role("img").evaluate("image => image.naturalWidth") > 0
    # Letterboxed, not cropped: a portrait or 4:3 poster is shown whole (a trial saw a portrait clip's middle band)
    assert speech_card.get_by_role("img").evaluate("image => getComputedStyle(image).objectFit") == "contain"
    page.screenshot(path=SCREENSHOTS / "ui-library.png", full_page=True)

    page.get_by_role("searchbox", name="Search clips, descriptions, keywords and transcripts").fill(footage.spoken)
    page.get_by_role("button", name="Search", exact=True).click()
    hits = page.locator("#search-hits .hit")
    expect(hits).to_have_count(1)
    expect(hits.locator("mark").first).to_have_text(re.compile(re.escape(footage.spoken), re.IGNORECASE))
    expect(hits.locator(".hit-field")).to_have_text("speech")
    assert hits.locator("img").evaluate("image => getComputedStyle(image).objectFit") == "contain"
    page.screenshot(path=SCREENSHOTS / "ui-search.png", full_page=True)
    hits.get_by_role("link").click()
    expect(page).to_have_url(re.compile(re.escape(f"{footage.base}/ui/items/{footage.speech}") + r"#frame-\d+$"))
    expect(page.locator(".frame.is-target")).to_have_count(1)
    expect(page.locator(".frame.is-target")).to_contain_text(footage.spoken)
    expect(page.locator(".frame .frame-tc .tc")).to_have_text(footage.timecodes)
    assert footage.timecodes and footage.transcript
    expect(page.locator(".transcript")).to_contain_text(footage.transcript.split()[0])
    first_frame = page.locator(".frame img").first
    first_frame.scroll_into_view_if_needed()
    expect(first_frame).to_have_js_property("complete", True)
    assert first_frame.evaluate("image => image.naturalWidth") > 0
    assert first_frame.evaluate("image => getComputedStyle(image).objectFit") == "contain"
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=SCREENSHOTS / "ui-item.png", full_page=True)
    page.set_viewport_size({"width": 820, "height": 1180})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"
    page.screenshot(path=SCREENSHOTS / "ui-item-tablet.png", full_page=True)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{footage.base}/ui/items/{footage.speech}")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to content")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"

    library = session.new_page()
    library.goto(f"{footage.base}/ui/")
    library_badge = library.locator(f'.card[data-item-id="{footage.waiting}"] [data-role="status"]')
    expect(library_badge).to_have_text(Status.AWAITING_USER_INPUT.value)
    library.evaluate("window.notReloaded = true")
    page.goto(f"{footage.base}/ui/items/{footage.waiting}")
    status = page.locator("#item-status")
    expect(status).to_have_text(Status.AWAITING_USER_INPUT.value)
    page.evaluate("window.notReloaded = true")
    page.get_by_label("Prompt for the frame analysis").fill("Note the test patterns and colour bars.")
    page.screenshot(path=SCREENSHOTS / "ui-prompt.png")
    page.get_by_role("button", name="Send prompt and continue").click()
    expect(status).to_have_text(Status.AVID_DESCRIPTION.value, timeout=PIPELINE_MS)
    assert page.evaluate("window.notReloaded") is True
    expect(page.locator("#exports")).to_be_visible()
    expect(page.get_by_label("Prompt for the frame analysis")).to_be_hidden()
    expect(page.locator("#item-prompt")).to_have_text("Note the test patterns and colour bars.")
    # The library, open in another tab all along, shows the same news when looked at again, without a reload.
    library.bring_to_front()
    expect(library_badge).to_have_text(Status.AVID_DESCRIPTION.value)
    expect(library_badge).to_have_class(re.compile(r"\btone-done\b"))
    assert library.evaluate("window.notReloaded") is True


def test_a_signed_out_browser_gets_neither_pages_nor_images(footage: Footage, chromium: Browser) -> None:
    page = chromium.new_page()
    poster = f"{footage.base}/items/{footage.speech}/artifacts/poster/0"

    sign_in(page, footage.base, f"/ui/items/{footage.speech}")
    assert page.request.get(poster).status == 200
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/login"))

    page.goto(f"{footage.base}/ui/items/{footage.speech}")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    expect(page.locator(".frame")).to_have_count(0)
    assert page.request.get(poster).status == 401
    assert chromium.new_context().request.get(poster).status == 401


#: Wraps the page's ``fetch`` to list its looks at one item (``GET`` of the URL given): each with the activity
#: line at the time, and ``shown`` once a task after its answer's body has run (the page's handler, a
#: promise callback on that body, has run before it).
LOOKS_AT_ITEM = """itemUrl => {
  window.itemLooks = [];
  const fetchFirst = window.fetch;
  window.fetch = async (url, options) => {
    const looks = (options?.method || "GET") === "GET" && String(url) === itemUrl;
    const look = { activity: document.getElementById("item-activity").textContent, shown: false };
    if (looks) window.itemLooks.push(look);
    const response = await fetchFirst(url, options);
    if (looks) {
      const body = response.json.bind(response);
      response.json = () => body().finally(() => setTimeout(() => { look.shown = true; }, 0));
    }
    return response;
  };
}"""


def test_search_takes_the_library_s_place_and_actions_show_their_result_without_a_reload(
        footage: Footage, chromium: Browser, context: Any, test_media: SampleClips,
        unique_id: Callable[[str], str]) -> None:
    from pipelines import actions  # imports ``actors``, which must wait for pytest_configure's environment

    broken = unique_id("BROKEN")
    source = context.settings.resolved_media_roots[0] / f"{broken}.mp4"
    source.write_bytes(b"not a movie, a half-copied card" * 100)
    actions.submit(context, [NewItem(broken, str(source))])
    wait_for(lambda: context.store.items.get(broken).error, timeout_s=60, what="step 1 to fail on a non-media file")

    page = chromium.new_context(viewport={"width": 1366, "height": 900}).new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("response", lambda response: problems.append(f"{response.status} {response.url}")
            if response.status == 404 else None)
    sign_in(page, footage.base, "/ui/")
    expect(page.locator("link[rel=icon]")).to_have_attribute("href", "/ui/static/favicon.svg")

    # A search shows its results, with their count, instead of the whole library; Back and Forward follow it.
    searchbox = page.get_by_role("searchbox", name="Search clips, descriptions, keywords and transcripts")
    searchbox.fill(footage.spoken)
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator("#search-title")).to_have_text(f"1 item matches “{footage.spoken}”")
    expect(page.locator("#search-hits .hit")).to_have_count(1)
    expect(page.locator(".card").first).to_be_hidden()
    expect(page.locator(".filters")).to_be_hidden()
    expect(page).to_have_url(re.compile(r"[?&]q=" + re.escape(footage.spoken) + "$"))
    page.screenshot(path=SCREENSHOTS / "ui-search-only.png", full_page=True)
    page.go_back()
    expect(page).to_have_url(re.compile(r"/ui/?$"))
    expect(page.locator(".card")).to_have_count(3)
    expect(searchbox).to_have_value("")
    expect(page.locator("#search-results")).to_be_hidden()
    page.go_forward()
    expect(page.locator("#search-hits .hit")).to_have_count(1)
    expect(searchbox).to_have_value(footage.spoken)
    expect(page.locator(".card").first).to_be_hidden()
    page.get_by_role("link", name="← Back to the library").click()
    expect(page.locator(".card")).to_have_count(3)
    expect(page).to_have_url(re.compile(r"/ui/?$"))
    expect(searchbox).to_have_value("")
    page.goto(f"{footage.base}/ui/?q={footage.spoken}")  # a shared link opens on the results
    expect(page.locator("#search-hits .hit")).to_have_count(1)
    expect(page.locator(".card").first).to_be_hidden()

    # An audio-only item's card says so (after the search: its speech would match too).
    sound = unique_id("SOUND")
    actions.submit(context, [NewItem(sound, str(test_media.path("speech.wav")))])
    wait_for(lambda: context.store.items.get(sound).media_kind == AUDIO_ONLY, timeout_s=60, what="step 1 of a wav")
    page.goto(f"{footage.base}/ui/")
    sound_card = page.locator(f'.card[data-item-id="{sound}"]')
    expect(sound_card.locator(".poster")).to_contain_text("audio only")
    expect(sound_card.locator(".sound-icon")).to_be_visible()
    expect(sound_card.locator(".duration")).to_have_text(re.compile(r"^0:\d\d\.\d$"))
    page.screenshot(path=SCREENSHOTS / "ui-library-audio-only.png", full_page=True)

    # Retry after the cause is fixed: the banner and the buttons follow the item with no reload.
    page.goto(f"{footage.base}/ui/items/{broken}")
    page.evaluate("window.notReloaded = true")
    error, retry = page.locator("#item-error"), page.get_by_role("button", name="Retry failed step")
    expect(error).to_contain_text("NotMedia")
    expect(retry).to_be_visible()
    shutil.copyfile(test_media.path("cuts_noaudio.mp4"), source)
    # Step 1's queue is paused, so the page is seen between the retry and the step's end.
    key = {"X-API-Key": KEY}
    assert page.request.post(f"{footage.base}/queues/file_info/pause", headers=key).ok
    # Each look the page takes at the item: what its activity line said when it looked, and whether the
    # answer has been shown (a task after the answer's body: the page's handler has run by then).
    page.evaluate(LOOKS_AT_ITEM, f"/items/{broken}")
    try:
        retry.click()
        expect(page.locator("#action-message")).to_have_text("Queued again.")
        expect(retry).to_be_hidden()
        expect(error).to_have_class(re.compile(r"\bis-stale\b"))
        expect(error).to_have_text(re.compile(r"^Queued again; the last attempt failed with NotMedia in file_info: "))
        expect(page.locator("#item-status")).to_have_class(re.compile(r"\btone-working\b"))
        # Once a worker has taken the message and held it for the paused queue (a held delivery, whose
        # progress event makes the page look at the item again), the step has not ended: still working.
        wait_for(lambda: page.request.get(f"{footage.base}/queues/file_info", headers=key).json()["held"] == 1,
                 timeout_s=30, what="a worker to hold the retried message for the paused queue")
        page.wait_for_function("() => window.itemLooks.some((look) => look.shown"
                               " && look.activity.startsWith('file info held: its queue is paused'))", timeout=30_000)
        expect(page.locator("#item-activity")).to_have_text(re.compile(r"^file info held: its queue is paused"))
        expect(page.locator("#item-status")).to_have_class(re.compile(r"\btone-working\b"))
        expect(retry).to_be_hidden()
        page.screenshot(path=SCREENSHOTS / "ui-item-retry-queued.png")
    finally:
        assert page.request.post(f"{footage.base}/queues/file_info/resume", headers=key).ok
    expect(page.locator("#item-status")).to_have_text(Status.AWAITING_USER_INPUT.value, timeout=PIPELINE_MS)
    expect(error).to_be_hidden()
    expect(retry).to_be_hidden()
    expect(page.get_by_label("Prompt for the frame analysis")).to_be_visible()
    expect(page.locator("#reload-note")).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "ui-item-after-retry.png", full_page=True)

    # Cancel and uncancel swap their buttons; a rerun from step 1 runs again up to the prompt.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel item").click()
    expect(page.locator("#item-status")).to_have_class(re.compile(r"\btone-cancelled\b"))
    expect(page.get_by_role("button", name="Cancel item")).to_be_hidden()
    expect(page.locator("#rerun-form")).to_be_hidden()
    page.get_by_role("button", name="Undo cancel and continue").click()
    expect(page.locator("#action-message")).to_have_text(
        f"Cancel undone. Nothing was queued: nothing runs from '{Status.AWAITING_USER_INPUT.value}'.")
    expect(page.get_by_role("button", name="Cancel item")).to_be_visible()
    expect(page.get_by_role("button", name="Undo cancel and continue")).to_be_hidden()
    expect(page.get_by_label("Prompt for the frame analysis")).to_be_visible()
    page.get_by_label("Log again from a step (later results are replaced)").select_option("file_info")
    page.get_by_role("button", name="Rerun from this step").click()
    expect(page.locator("#action-message")).to_have_text("Queued again from step 1 · file info.")
    wait_for(lambda: any(event.event == "rerun_requested" for event in context.store.timeline.for_item(broken)),
             what="the rerun on the timeline")
    expect(page.locator("#item-status")).to_have_text(Status.AWAITING_USER_INPUT.value, timeout=PIPELINE_MS)
    assert page.evaluate("window.notReloaded") is True

    # Delete asks first; a dismissed dialog keeps the item.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete item…").click()
    assert context.store.items.get(broken).id == broken
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete item…").click()
    expect(page).to_have_url(re.compile(r"/ui\?deleted=" + broken + "$"))
    expect(page.get_by_role("status").filter(has_text=f"Deleted {broken}.")).to_be_visible()
    expect(page.locator(f'.card[data-item-id="{broken}"]')).to_have_count(0)
    assert problems == []
    source.unlink()


@dataclass(frozen=True)
class Shelf:
    """Items written straight to a SQLite store, and real gunicorn serving it: no pipeline runs."""

    base: str
    store: Store


@pytest.fixture
def shelf(sqlite_store: Store, redis_client: Any, serve_api: Callable[[dict[str, str]], str]) -> Shelf:  # noqa: F811
    """The test's SQLite store served by real gunicorn, on the session's Redis (flushed by ``redis_client``)."""
    base = serve_api({"DATABASE_URL": sqlite_store.engine.url.render_as_string(hide_password=False)})
    return Shelf(base=base, store=sqlite_store)


def library_on_a_paused_clock(page: Page, shelf: Shelf, item_ids: tuple[str, ...]) -> Page:
    """Store ``item_ids`` at step 1, then open the library signed in on a paused clock (``page.clock``): its
    timers fire only as the test moves the clock."""
    shelf.store.items.create([NewItem(item_id, f"/media/cards/{item_id}.mov") for item_id in item_ids])
    page.clock.install(time=PAGE_CLOCK_START)
    page.clock.pause_at(PAGE_CLOCK_START + 1)
    sign_in(page, shelf.base, "/ui/")
    return page


def test_a_search_inside_a_status_filter_says_the_filter_applies_and_offers_every_status(
        shelf: Shelf, chromium: Browser) -> None:
    # Given five items about a fox at step 1 and one waiting for its prompt that is not about a fox
    for number in range(5):
        log_item(shelf.store, f"FOX{number}", descriptions=["a red fox crosses the lane"],
                 status=Status.PENDING_FILE_INFO)
    log_item(shelf.store, "HERON", descriptions=["a heron in the shallows"], status=Status.AWAITING_USER_INPUT)
    page = chromium.new_page()
    sign_in(page, shelf.base, "/ui/")
    page.goto(f"{shelf.base}/ui?status=Awaiting%20User%20Input")
    searchbox = page.get_by_role("searchbox", name="Search clips, descriptions, keywords and transcripts")

    # When the logger searches inside the filter
    searchbox.fill("fox")
    page.get_by_role("button", name="Search", exact=True).click()

    # Then the page says the filter still applies, and offers the search at every status
    expect(page).to_have_url(re.compile(r"\?status=Awaiting\+User\+Input&q=fox$"))
    expect(page.locator("#search-title")).to_have_text(f"No matches for “fox” at {Status.AWAITING_USER_INPUT.value}",
                                                       timeout=SEARCH_MS)
    everywhere = page.get_by_role("link", name="Search all statuses")
    expect(everywhere).to_be_visible()
    everywhere.click()
    expect(page).to_have_url(re.compile(r"/ui\?q=fox$"))
    expect(page.locator("#search-title")).to_have_text("5 items match “fox”", timeout=SEARCH_MS)
    expect(page.locator("#search-scope")).to_be_hidden()

    # And a filter with hits names itself above them too (the page it leaves holds one of the API's four threads
    # for its live stream until the server sees it gone, which a loaded machine sees late)
    page.goto(f"{shelf.base}/ui?status=0%20-%20Pending%20File%20Info&q=fox")
    expect(page.locator("#search-title")).to_have_text(f"5 items match “fox” at {Status.PENDING_FILE_INFO.value}",
                                                       timeout=SEARCH_MS)
    expect(page.locator("#search-scope")).to_contain_text(Status.PENDING_FILE_INFO.value)
    expect(page.locator("#search-hits .hit")).to_have_count(5)


def test_the_library_s_status_counts_follow_items_on_the_page_and_off_it(shelf: Shelf, chromium: Browser,
                                                                          redis_client: Any) -> None:
    # Given two items at step 1, and the library open on a paused clock: its timers fire only as the test moves it
    page = library_on_a_paused_clock(chromium.new_page(), shelf, ("MOVES", "STAYS"))
    pending = page.locator(f'.chip[data-status="{Status.PENDING_FILE_INFO.value}"] .chip-count')
    complete = page.locator(f'.chip[data-status="{Status.FILE_INFO_COMPLETE.value}"] .chip-count')
    expect(pending).to_have_text("2")
    expect(complete).to_have_text("0")
    card = page.locator('.card[data-item-id="MOVES"] [data-role="status"]')

    # When step 1 moves one of them on: its status stored, its progress published, as a worker does
    shelf.store.items.transition("MOVES", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)
    ProgressChannel(redis_client, namespace=Settings.from_env().namespace).publish(ProgressEvent(
        item_id="MOVES", stage="file_info", state="succeeded", percent=17, status=Status.FILE_INFO_COMPLETE.value))

    # Then, once its card shows the move, the chips follow within a second of the page's time, not at the next
    # round of the few seconds' refresh
    expect(card).to_have_text(Status.FILE_INFO_COMPLETE.value)
    page.clock.run_for(1000)
    expect(pending).to_have_text("1")
    expect(complete).to_have_text("1")

    # And an item that is not on the page (ingested since) is counted at the next refresh, with the title's count
    shelf.store.items.create([NewItem("ARRIVES", "/media/cards/ARRIVES.mov")])
    page.clock.run_for(6000)
    expect(page.locator('.chip[data-status=""] .chip-count')).to_have_text("3")
    expect(page.locator("#library-count")).to_have_text("3 items")
    expect(pending).to_have_text("2")


def test_a_busy_library_refreshes_its_counts_on_time_and_asks_only_when_an_item_moves(
        shelf: Shelf, chromium: Browser, redis_client: Any) -> None:
    # Given a card whose step reports progress every 200 ms of the page's time, and an item moved with no event
    page = library_on_a_paused_clock(chromium.new_page(), shelf, ("BUSY", "QUIET"))
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if "/ui/counts" in request.url else None)
    pending = page.locator(f'.chip[data-status="{Status.PENDING_FILE_INFO.value}"] .chip-count')
    expect(pending).to_have_text("2")
    shelf.store.items.transition("QUIET", Status.PENDING_FILE_INFO, Status.FILE_INFO_COMPLETE)
    channel = ProgressChannel(redis_client, namespace=Settings.from_env().namespace)
    activity = page.locator('.card[data-item-id="BUSY"] [data-role="activity"]')

    # When 30 events of its step, each at the status it already shows, come 200 ms apart (6 s: past a refresh)
    for attempt in range(2, 32):
        channel.publish(ProgressEvent(item_id="BUSY", stage="file_info", state="running", percent=5,
                                      status=Status.PENDING_FILE_INFO.value, attempt=attempt))
        expect(activity).to_have_text(f"file info running (attempt {attempt})")
        page.clock.run_for(200)

    # Then the refresh every 5 s came on time, and it was the only request: no status moved on the page
    expect(pending).to_have_text("1")
    assert len(asked) == 1, asked


def test_a_library_tab_signed_out_elsewhere_goes_to_the_login_page_at_its_next_refresh(
        shelf: Shelf, chromium: Browser) -> None:
    # Given the library open in one tab and an item page in another, on one session
    tabs = chromium.new_context()
    library = library_on_a_paused_clock(tabs.new_page(), shelf, ("ONE",))
    other = tabs.new_page()
    other.goto(f"{shelf.base}/ui/items/ONE")

    # When the other tab signs out, and the library's refresh comes
    other.get_by_role("button", name="Sign out").click()
    expect(other).to_have_url(re.compile(r"/ui/login"))
    library.clock.run_for(6000)

    # Then the library goes to the login page, and back to itself after (no browser login dialog in between)
    expect(library).to_have_url(re.compile(r"/ui/login\?next=%2Fui(%2F)?$"))


def test_an_audio_only_search_hit_shows_the_audio_only_mark_and_asks_for_no_poster(
        shelf: Shelf, chromium: Browser) -> None:
    # Given a logged sound roll whose speech mentions an otter
    log_item(shelf.store, "ROLL7", speech=[(0.5, "the otter surfaced by the jetty")], source="/media/ROLL7.wav",
             status=Status.AVID_DESCRIPTION)
    shelf.store.items.update("ROLL7", media_kind=AUDIO_ONLY)
    page = chromium.new_page()
    artifact_requests: list[str] = []
    page.on("request", lambda request: artifact_requests.append(request.url) if "/artifacts/" in request.url else None)
    sign_in(page, shelf.base, "/ui/")

    # When a search finds it
    page.goto(f"{shelf.base}/ui?q=otter")

    # Then its hit carries the library's audio-only mark, and no poster is asked for
    hit = page.locator("#search-hits .hit")
    expect(hit).to_have_count(1)
    expect(hit.locator(".audio-only")).to_contain_text("audio only")
    expect(hit.locator(".sound-icon")).to_be_visible()
    expect(hit.locator("img")).to_have_count(0)
    page.screenshot(path=SCREENSHOTS / "ui-search-audio-only.png")
    assert artifact_requests == []


def test_an_item_page_with_a_long_id_fits_a_phone_and_its_timeline_scrolls_in_its_box(
        shelf: Shelf, chromium: Browser) -> None:
    # Given an item with a 64-character id, a file and a timeline of a few attempts
    item_id = "A001_C002_20260114_R1_" + "X" * 42
    log_item(shelf.store, item_id, descriptions=["a boat leaves the harbour"], status=Status.AVID_DESCRIPTION,
             source=f"/media/cards/{item_id}.mov")
    for attempt in (1, 2):
        shelf.store.timeline.record(NewEvent(item_id=item_id, event="failed", step="analysis", attempt=attempt,
                                             worker="render-host-07:12345:140223", wait_ms=40, run_ms=2500,
                                             error_type="UpstreamUnavailable", error_message="Gemini answered 503"))
    page = chromium.new_context(viewport={"width": 1366, "height": 900}).new_page()
    sign_in(page, shelf.base, f"/ui/items/{item_id}")

    # Then at desktop width the status badge stays inside the page's head
    head = page.locator(".item-head").bounding_box()
    badge = page.locator("#item-status").bounding_box()
    assert head and badge and badge["x"] + badge["width"] <= head["x"] + head["width"] + 0.5

    # And on a phone the page does not scroll sideways; the timeline scrolls inside its own box instead
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth"), page.evaluate(
        "document.scrollingElement.scrollWidth")
    box = page.locator(".item-timeline .table-scroll")
    assert box.evaluate("box => box.scrollWidth > box.clientWidth && getComputedStyle(box).overflowX === 'auto'")
    box.scroll_into_view_if_needed()
    box.evaluate("box => { box.scrollLeft = box.scrollWidth; }")
    expect(page.get_by_role("columnheader", name="Error")).to_be_in_viewport()
    page.screenshot(path=SCREENSHOTS / "ui-item-phone-long-id.png", full_page=True)


def test_a_prompt_with_markup_rtl_and_lines_is_shown_as_typed_and_never_run(shelf: Shelf, chromium: Browser) -> None:
    # Given an item sent a prompt holding markup, a right-to-left line and a blank line
    prompt = 'Mark <img src=x onerror="alert(1)"> & <b>boats</b>\nשלום, the harbour master\n\nthird line'
    log_item(shelf.store, "PROMPTED", descriptions=["a pier"], status=Status.AVID_DESCRIPTION)
    shelf.store.items.update("PROMPTED", prompt=prompt)
    page = chromium.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, shelf.base, "/ui/items/PROMPTED")

    # Then the page shows it as typed, line by line, as text
    shown = page.locator("#item-prompt")
    expect(shown).to_be_visible()
    expect(shown).to_have_js_property("innerText", prompt)
    assert shown.evaluate("element => getComputedStyle(element).whiteSpace") == "pre-wrap"
    assert shown.evaluate("element => element.children.length") == 0
    assert dialogs == []

"""What the browser tests share: Debian's Chromium launched one way, opening the page, asking on it,
and where the viewer's cited quote sits."""

from __future__ import annotations

import warnings

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch(playwright):
    """Start headless Chromium (Playwright's own browser download does not work here)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


# Gradio shows a page-wide "Loading..." until every component's script has loaded. On a loaded
# machine the page has been seen to stay so (about one page in sixty, its HTML components never
# drawn; once with a component script still loading, once with every request but the heartbeat
# done), usable only once loaded again, as a reader would.
MOUNT_TIMEOUT_MS = 20_000


def open_page(page, url: str) -> None:
    """Go to the chat page at `url` and wait until Gradio has drawn it (its header is shown).

    If it has not within MOUNT_TIMEOUT_MS, a warning (in pytest's summary) names the requests still
    open, the errors the page logged and the start of what it shows, and the page is loaded once more.
    """
    still_open, errors = set(), []
    page.on("request", lambda request: still_open.add(request))
    page.on("requestfinished", lambda request: still_open.discard(request))
    page.on("requestfailed", lambda request: errors.append(f"request failed: {request.url} ({request.failure})"))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.goto(url)
    header = page.locator(".sb-header h1")
    try:
        header.wait_for(timeout=MOUNT_TIMEOUT_MS)
    except PlaywrightTimeout:
        shown = page.evaluate("() => document.body.innerText.slice(0, 200)")
        warnings.warn(f"the page was not drawn in {MOUNT_TIMEOUT_MS / 1000:.0f} s; loaded again. Still open: "
                      + ", ".join(sorted(request.url for request in still_open))
                      + f". Errors: {errors or 'none'}. It showed: {shown!r}", stacklevel=2)
        page.reload()
        header.wait_for()


def cited_mark_in_view(page) -> dict:
    """Wait until the viewer's <mark id="cited"> is scrolled into its box and the window; return the geometry."""
    geometry = """() => {
        const mark = document.querySelector('#sb-viewer mark#cited');
        if (!mark) return null;
        const box = mark.closest('.viewer-scroll');
        const m = mark.getBoundingClientRect(), b = box.getBoundingClientRect();
        return {mark: [m.top, m.bottom], box: [b.top, b.bottom], viewport: window.innerHeight,
                scrollTop: box.scrollTop, visible: m.top >= b.top && m.bottom <= b.bottom && m.top >= 0
                && m.bottom <= window.innerHeight};
    }"""
    page.wait_for_function(f"() => {{ const g = ({geometry})(); return g && g.visible; }}")
    return page.evaluate(geometry)


def settled(page, elem_id: str) -> None:
    """Wait until Gradio has finished updating a component (no pending state, fade-in done)."""
    page.wait_for_function(
        """(id) => { const c = document.querySelector(`#${id} .html-container`);
                     return c && !c.classList.contains('pending') && getComputedStyle(c).opacity === '1'; }""",
        arg=elem_id,
    )


def ask(page, question: str):
    """Type a question, press Enter, and return the new conversation turn once it is shown."""
    turns = page.locator("#sb-conversation .turn")
    before = turns.count()
    box = page.locator("#sb-question textarea")
    box.fill(question)
    box.press("Enter")
    expect(turns).to_have_count(before + 1)
    settled(page, "sb-conversation")
    return turns.last


# Every distinct text an element inside a container shows, in order, as the page changes it.
_WATCH_TEXTS = """([container, selector]) => {
  window.sourcebookSeen = [];
  const root = document.querySelector(container);
  new MutationObserver(() => {
    const text = root.querySelector(selector);
    if (text && !window.sourcebookSeen.includes(text.textContent)) window.sourcebookSeen.push(text.textContent);
  }).observe(root, {subtree: true, childList: true, characterData: true});
}"""


def watch_texts(page, container: str, selector: str) -> None:
    """Start recording each distinct text of `selector` inside `container` (read with seen_texts)."""
    page.evaluate(_WATCH_TEXTS, [container, selector])


def seen_texts(page) -> list[str]:
    """The texts recorded since watch_texts, in the order the page showed them."""
    return page.evaluate("window.sourcebookSeen")

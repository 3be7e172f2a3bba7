"""What the browser tests share: Debian's Chromium launched one way, and where the viewer's cited quote sits."""

from __future__ import annotations

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

"""Reading scanned PDF pages with Tesseract (Debian's tesseract-ocr, through pytesseract), when it is installed.

The only module that runs OCR. A page without a text layer is read from the images on it, so its
words land on their own page and citations keep the page number.
"""

from __future__ import annotations

import functools
import logging
import shutil

from pypdf import PageObject

log = logging.getLogger(__name__)

# What a keeper is told when a page has no text and Tesseract is not there to read it.
INSTALL_HINT = "Install Tesseract (apt-get install tesseract-ocr, or `make ocr`) to read scanned pages"
# Smaller images are icons, rules and bullets, not text worth a Tesseract run.
_MIN_SIDE_PX = 32


@functools.cache
def available() -> bool:
    """Whether Tesseract can be run (its program is on PATH and pytesseract is installed)."""
    if shutil.which("tesseract") is None:
        return False
    try:
        import pytesseract  # noqa: F401  (installed with sourcebook; checked so a broken install says so)
    except ImportError:
        log.warning("tesseract is installed but pytesseract is not: scanned pages are not read")
        return False
    return True


def read_page(page: PageObject) -> str:
    """Return the words OCR finds in the images on a PDF page, in the page's order, or "" when there are none.

    An image that cannot be decoded or read is logged and passed over: one bad picture never
    costs the rest of the document.
    """
    import pytesseract

    texts = []
    for image in page.images:
        try:
            picture = image.image
            if picture is None or min(picture.size) < _MIN_SIDE_PX:
                continue
            text = pytesseract.image_to_string(picture.convert("L")).strip()
        except Exception:  # pypdf's image decoders and Tesseract fail in many ways on odd files
            log.warning("could not OCR image %s", image.name, exc_info=True)
            continue
        if text:
            texts.append(text)
    return "\n\n".join(texts)

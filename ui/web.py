"""The chat page: ask, read quoted answers, open their sources, manage the documents.

Everything shown here that comes from a document or a reader (quotes, passages, titles,
headings, sources, questions) is untrusted: it is HTML-escaped by the render functions below
before it reaches a gr.HTML component, which inserts its value as markup.
"""

from __future__ import annotations

import html
import json
import logging
import re
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

from pydantic import ValidationError

from app.export import SEPARATOR, TITLE, turn_markdown
from app.deleted import KeptFile
from app.gaps import Gap
from app.progress import IngestProgress
from app.service import MAX_QUESTION_CHARS, Deletion, Sourcebook
from app.uploads import Upload, UploadResult
from ingest.records import Document
from ingest.errors import IngestError
from ingest.health import DocumentHealth
from retrieval.errors import DocumentNotFound, NameTaken
from retrieval.files import disk_full
from retrieval.records import Answer, Citation, Hit, Place, StoredDocument, quoted, quoted_markdown, span_hash
from ui.api import AskResponse
from ui.guard import UPLOAD_TOKEN_COOKIE

log = logging.getLogger(__name__)

DISK_FULL_MESSAGE = "The server's disk is full: nothing was {changed}. Free some space and try again."
# The start screen lists at most this many document titles (a big library has thousands).
START_TITLES = 12
SUGGESTIONS = 5
# A citation card shows its quote with about this many characters of its passage either side.
CARD_CONTEXT = 100
# A "see also" card shows about this much of the opening of its passage.
CARD_OPENING = 2 * CARD_CONTEXT
# The viewer shows at most this many characters of a document, centred on the cited span.
VIEWER_CHARS = 200_000
TABLE_HEADERS = ["title", "source", "size", "passages", "updated", "health"]
# The conversation is kept in the reader's browser (localStorage), its latest turns only.
SAVED_TURNS = 50
CONVERSATION_KEY = "sourcebook-conversation"
# Gradio encrypts a BrowserState with a secret it also sends to the page, so the secret protects
# nothing; a fixed one lets a conversation outlive a restart of the server.
CONVERSATION_SECRET = "sourcebook-conversation"
EXPORT_FILE = "sourcebook-conversation.md"
# A rating's comment, as long as the HTTP API takes.
COMMENT_CHARS = 5000
SOURCES_TAB = "Sources"
# While the Sources tab is open, the latest ingest (any: the watcher's, `sourcebook ingest` in
# another process) is read from its progress file this often.
INGEST_POLL_SECONDS = 1.0
# An Origin header as browsers send it: scheme, host name or address, optional port.
_ORIGIN = re.compile(r"https?://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")

# The page's fonts are the reader's own system fonts: nothing to download, the same look offline,
# and one typeface for every weight (Gradio's bundled Source Sans Pro draws a bold "A" from
# another font). Gradio quotes each name, so CSS keywords like system-ui cannot be used here.
SYSTEM_FONTS = ("Segoe UI", "Roboto", "Helvetica Neue", "Noto Sans", "Liberation Sans", "DejaVu Sans", "Arial",
                "sans-serif")
SYSTEM_MONO_FONTS = ("SFMono-Regular", "Menlo", "Consolas", "DejaVu Sans Mono", "Liberation Mono", "monospace")


def page_theme() -> gr.themes.Base:
    """Gradio's default theme with system fonts: the page asks for no font files."""
    return gr.themes.Default(font=SYSTEM_FONTS, font_mono=SYSTEM_MONO_FONTS)


STYLE = """
<style id="sourcebook-style">
.sb-header h1 { margin: 0; font-size: 1.6rem; }
.sb-header p { margin: .2rem 0 0; color: var(--body-text-color-subdued); }
.sb-start { padding: 1rem 1.2rem; border: 1px solid var(--border-color-primary); border-radius: 10px;
  background: var(--background-fill-secondary); }
.sb-start h2 { margin-top: 0; font-size: 1.25rem; }
.sb-start h3 { font-size: 1rem; margin: 1rem 0 .4rem; }
.sb-start .doc-titles { margin: .3rem 0 0 1.1rem; padding: 0; }
.sb-start .doc-titles li { margin: .1rem 0; }
.sb-start .suggestions { display: flex; flex-wrap: wrap; gap: .5rem; }
.sb-start .suggestions button.suggestion { all: unset; box-sizing: border-box; border: 1px solid var(--color-accent);
  color: var(--body-text-color); background: var(--background-fill-primary); border-radius: 999px;
  padding: .35rem .9rem; cursor: pointer; font-size: .92rem; font-weight: 400; line-height: 1.35; }
.sb-start .suggestions button.suggestion:hover,
.sb-start .suggestions button.suggestion:focus-visible { background: var(--color-accent-soft); }
.sb-start .empty { color: var(--body-text-color-subdued); }
.sb-conversation .turn { margin: 0 0 1.4rem; }
.sb-conversation .question { font-weight: 600; margin: 0 0 .5rem; padding: .5rem .8rem; border-radius: 8px;
  background: var(--color-accent-soft); display: inline-block; max-width: 100%; }
.sb-conversation .reading { color: var(--body-text-color-subdued); font-size: .9em; margin: -.2rem 0 .5rem .2rem; }
.sb-conversation .reading button.sb-as-typed { all: unset; cursor: pointer; margin-left: .3rem;
  color: var(--color-accent); text-decoration: underline; }
.sb-conversation .reading button.sb-as-typed:focus-visible { outline: 2px solid var(--color-accent); outline-offset: 2px; }
.sb-conversation .answer { padding: .8rem 1rem; border-radius: 8px; border: 1px solid var(--border-color-primary); }
.sb-conversation .answer.answered { border-left: 4px solid var(--color-accent); }
.sb-conversation .answer-text { margin: 0 0 .6rem; line-height: 1.55; white-space: pre-line; }
.sb-conversation .answer.not-found { background: rgba(245, 158, 11, .12); border: 1px solid rgba(217, 119, 6, .55);
  border-left: 4px solid #d97706; }
.sb-conversation .not-found-message { margin: 0 0 .6rem; font-weight: 600; color: #b45309; }
.dark .sb-conversation .not-found-message { color: #fbbf24; }
.sb-conversation h4.see-also { margin: .6rem 0 .4rem; font-size: .95rem; }
.sb-conversation .answer-text button.cite-marker { all: unset; color: var(--color-accent); font-weight: 700;
  cursor: pointer; padding: 0 .15rem; border-radius: 4px; font-size: .92em; }
.sb-conversation .answer-text button.cite-marker:hover,
.sb-conversation .answer-text button.cite-marker:focus-visible { background: var(--color-accent-soft);
  text-decoration: underline; }
.sb-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .55rem .75rem;
  margin: .5rem 0; background: var(--background-fill-primary); }
.sb-card:hover, .sb-card:focus-within { border-color: var(--color-accent); }
.sb-card .card-open { cursor: pointer; border-radius: 6px; }
.sb-card .card-open:focus-visible { outline: 2px solid var(--color-accent); outline-offset: 2px; }
.sb-card .card-actions, .sb-conversation .answer-actions { display: flex; flex-wrap: wrap; align-items: center;
  gap: .4rem .6rem; margin-top: .45rem; font-size: .82rem; }
.sb-conversation .answer-actions { margin: 0 0 .4rem; }
#sb-conversation button.sb-copy { all: unset; box-sizing: border-box; cursor: pointer;
  border: 1px solid var(--border-color-primary);
  border-radius: 6px; padding: .15rem .55rem; font-size: .82rem; line-height: 1.4; color: var(--body-text-color);
  background: var(--background-fill-secondary); }
#sb-conversation button.sb-copy:hover { border-color: var(--color-accent); }
#sb-conversation button.sb-copy:focus-visible, .sb-card a.card-link:focus-visible {
  outline: 2px solid var(--color-accent);
  outline-offset: 2px; }
.sb-card a.card-link { color: var(--color-accent); text-decoration: underline; font-size: .82rem; }
.sb-card .card-place { font-size: .85rem; margin-bottom: .3rem; }
.sb-card .card-place .n { font-weight: 700; color: var(--color-accent); margin-right: .3rem; }
.sb-card .card-title { font-weight: 600; }
.sb-card .card-detail { color: var(--body-text-color-subdued); font-size: .82rem; }
.sb-card .card-source { color: var(--body-text-color-subdued); font-size: .78rem; font-family: var(--font-mono); }
.sb-card .card-text { font-size: .9rem; line-height: 1.5; white-space: pre-wrap; margin: 0; }
.sb-card .card-text mark, .sb-viewer .viewer-text mark { background: #fde68a; color: #1f2937; padding: 0 .1rem;
  border-radius: 2px; }
mark#cited { background: #fcd34d; color: #1f2937; box-shadow: 0 0 0 2px #f59e0b; }
.sb-viewer .viewer-empty { color: var(--body-text-color-subdued); padding: 1rem; border-radius: 8px;
  border: 1px dashed var(--border-color-primary); }
.sb-viewer .viewer-head { margin-bottom: .5rem; }
.sb-viewer .viewer-title { font-weight: 700; font-size: 1.05rem; }
.sb-viewer .viewer-place, .sb-viewer .viewer-note { color: var(--body-text-color-subdued); font-size: .85rem; }
.sb-viewer .viewer-changed { margin: .4rem 0 0; padding: .35rem .6rem; border-radius: 6px; font-size: .85rem;
  font-weight: 600; color: #b45309; background: rgba(245, 158, 11, .12); border: 1px solid rgba(217, 119, 6, .55); }
.dark .sb-viewer .viewer-changed { color: #fbbf24; }
.sb-viewer .viewer-scroll { position: relative; height: min(70vh, 720px); overflow-y: auto;
  border: 1px solid var(--border-color-primary); border-radius: 8px; padding: .6rem .8rem;
  background: var(--background-fill-secondary); }
.sb-viewer .viewer-text { white-space: pre-wrap; word-wrap: break-word; font-size: .9rem; line-height: 1.55; margin: 0;
  font-family: var(--font); }
.sb-results ul { list-style: none; margin: .3rem 0; padding: 0; }
.sb-results li { margin: .2rem 0; }
.sb-results .status { font-weight: 700; }
.sb-results .status-added, .sb-results .status-updated, .sb-results .status-deleted,
.sb-results .status-restored { color: #15803d; }
.sb-results .status-unchanged { color: var(--body-text-color-subdued); }
.sb-results .status-failed { color: #b91c1c; }
.sb-results progress { width: 10rem; vertical-align: middle; accent-color: var(--color-accent); }
.sb-ingest { margin: 0 0 .4rem; font-size: .9rem; }
.sb-conversation .rating { display: flex; flex-wrap: wrap; align-items: center; gap: .4rem .6rem; margin-top: .6rem;
  padding-top: .5rem; border-top: 1px solid var(--border-color-primary); font-size: .85rem; }
.sb-conversation .rating-ask, .sb-conversation .rating-state { color: var(--body-text-color-subdued); }
#sb-conversation button.sb-rate, #sb-conversation button.sb-rate-comment { all: unset; box-sizing: border-box;
  cursor: pointer; border: 1px solid var(--border-color-primary); border-radius: 6px; padding: .15rem .55rem;
  font-size: .82rem; line-height: 1.4; color: var(--body-text-color); background: var(--background-fill-secondary); }
#sb-conversation button.sb-rate:hover, #sb-conversation button.sb-rate-comment:hover { border-color: var(--color-accent); }
#sb-conversation button.sb-rate[aria-pressed="true"] { border-color: var(--color-accent); font-weight: 700;
  background: var(--color-accent-soft); }
#sb-conversation button.sb-rate:focus-visible, #sb-conversation button.sb-rate-comment:focus-visible {
  outline: 2px solid var(--color-accent); outline-offset: 2px; }
.sb-conversation textarea.rating-comment { flex: 1 1 16rem; min-height: 2.2rem; font: inherit; font-size: .85rem;
  padding: .25rem .45rem; border-radius: 6px; border: 1px solid var(--border-color-primary);
  background: var(--background-fill-primary); color: var(--body-text-color); resize: vertical; }
button.sb-rate::before { content: ""; display: inline-block; width: 1.05em; height: 1.05em;
  margin-right: .35em; vertical-align: -0.15em; background-color: currentColor;
  -webkit-mask: var(--thumb) no-repeat center / contain; mask: var(--thumb) no-repeat center / contain; }
/* thumbs */
.sb-gaps table { width: 100%; border-collapse: collapse; font-size: .9rem; }
.sb-gaps th, .sb-gaps td { text-align: left; vertical-align: top; padding: .45rem .5rem;
  border-bottom: 1px solid var(--border-color-primary); }
.sb-gaps td.count { font-weight: 700; text-align: right; width: 4rem; }
.sb-gaps .wordings, .sb-gaps .near { margin: .2rem 0 0 1rem; padding: 0; color: var(--body-text-color-subdued);
  font-size: .85rem; }
.sb-gaps .near-source { font-family: var(--font-mono); font-size: .78rem; }
.sb-gaps .empty, .sb-gaps .locked, .sb-note { color: var(--body-text-color-subdued); }
#sb-delete-result button.sb-restore, #sb-deleted button.sb-restore { all: unset; box-sizing: border-box;
  cursor: pointer; margin-left: .5rem; border: 1px solid var(--color-accent); border-radius: 6px; padding: .1rem .6rem;
  font-size: .85rem; color: var(--body-text-color); background: var(--background-fill-secondary); }
#sb-delete-result button.sb-restore:focus-visible, #sb-deleted button.sb-restore:focus-visible {
  outline: 2px solid var(--color-accent); outline-offset: 2px; }
.sb-deleted ul { list-style: none; margin: .3rem 0; padding: 0; }
.sb-deleted li { margin: .35rem 0; }
.sb-deleted .kept-as, .sb-deleted .kept-detail { color: var(--body-text-color-subdued); font-size: .82rem; }
.sb-deleted .kept-as { font-family: var(--font-mono); }
/* Every control shows where the keyboard is (Gradio's tabs and some buttons show nothing). */
.gradio-container button:focus-visible, .gradio-container a:focus-visible, .gradio-container summary:focus-visible,
.gradio-container [role="tab"]:focus-visible, .gradio-container [tabindex]:focus-visible,
.gradio-container input:focus-visible, .gradio-container textarea:focus-visible {
  outline: 3px solid var(--color-accent) !important; outline-offset: 2px !important; }
@media (max-width: 800px) {
  /* On a phone the documents table keeps readable columns (Gradio shares out the screen's width,
     a few letters a line) and scrolls sideways. */
  #sb-documents table.header-table, #sb-documents .virtual-body { width: 940px !important; min-width: 940px; }
  #sb-documents th:nth-child(1), #sb-documents td:nth-child(1), #sb-documents .body-cell:nth-child(1) {
    width: 200px !important; min-width: 200px !important; max-width: 200px !important; flex: 0 0 200px !important; }
  #sb-documents th:nth-child(2), #sb-documents td:nth-child(2), #sb-documents .body-cell:nth-child(2) {
    width: 220px !important; min-width: 220px !important; max-width: 220px !important; flex: 0 0 220px !important; }
  #sb-documents th:nth-child(3), #sb-documents td:nth-child(3), #sb-documents .body-cell:nth-child(3) {
    width: 80px !important; min-width: 80px !important; max-width: 80px !important; flex: 0 0 80px !important; }
  #sb-documents th:nth-child(4), #sb-documents td:nth-child(4), #sb-documents .body-cell:nth-child(4) {
    width: 80px !important; min-width: 80px !important; max-width: 80px !important; flex: 0 0 80px !important; }
  #sb-documents th:nth-child(5), #sb-documents td:nth-child(5), #sb-documents .body-cell:nth-child(5) {
    width: 140px !important; min-width: 140px !important; max-width: 140px !important; flex: 0 0 140px !important; }
  #sb-documents th:nth-child(6), #sb-documents td:nth-child(6), #sb-documents .body-cell:nth-child(6) {
    width: 220px !important; min-width: 220px !important; max-width: 220px !important; flex: 0 0 220px !important; }
}
/* Gradio's container hides overflow, which would stop the viewer sticking; clip does not. */
.gradio-container { overflow: clip !important; }
#sb-viewer-column { position: sticky; top: .5rem; align-self: flex-start; }
/* Closed beside the conversation, the viewer gives its room to it until a citation is opened again. */
body.sb-viewer-closed #sb-viewer-column { display: none !important; }
.sb-viewer .viewer-close { all: unset; box-sizing: border-box; float: right; cursor: pointer; margin: 0 0 .3rem .6rem;
  padding: 0 .55rem; border-radius: 6px; border: 1px solid var(--border-color-primary); font-size: 1.2rem;
  line-height: 1.6; color: var(--body-text-color); background: var(--background-fill-secondary); }
.sb-viewer .viewer-close:hover { border-color: var(--color-accent); }
.sb-viewer .viewer-close:focus-visible { outline: 2px solid var(--color-accent); outline-offset: 2px; }
.sb-card details.card-passage { margin-top: .35rem; font-size: .85rem; }
.sb-card details.card-passage summary { cursor: pointer; color: var(--color-accent); width: fit-content;
  border-radius: 4px; }
.sb-card details.card-passage summary:focus-visible { outline: 2px solid var(--color-accent); outline-offset: 2px; }
.sb-card details.card-passage .less, .sb-card details.card-passage[open] .more { display: none; }
.sb-card details.card-passage[open] .less { display: inline; }
.sb-card:has(details.card-passage[open]) .card-open .card-text { display: none; }
.sb-card .card-whole { font-size: .9rem; line-height: 1.5; white-space: pre-wrap; margin: .3rem 0 0; }
.sb-card .card-whole mark { background: #fde68a; color: #1f2937; padding: 0 .1rem; border-radius: 2px; }
.sb-viewer .viewer-back { display: none; }
@media (max-width: 800px) {
  /* On a narrow screen the viewer is a sheet over the conversation, shown while a passage is read. */
  #sb-viewer-column { display: none !important; }
  body.sb-reading #sb-viewer-column { display: flex !important; position: fixed !important; inset: 0; z-index: 1000;
    margin: 0 !important; padding: .75rem; min-width: 0 !important; max-width: none; overflow-y: auto;
    background: var(--background-fill-primary); }
  .sb-viewer .viewer-scroll { height: calc(100dvh - 10rem); }
  /* The sheet has Back instead. */
  .sb-viewer .viewer-close { display: none; }
  .sb-viewer .viewer-back { all: unset; display: inline-block; box-sizing: border-box; cursor: pointer;
    margin: 0 0 .6rem; padding: .4rem .8rem; border-radius: 8px; border: 1px solid var(--color-accent);
    color: var(--body-text-color); background: var(--background-fill-secondary); font-weight: 600; }
  .sb-viewer .viewer-back:focus-visible { outline: 2px solid var(--color-accent); outline-offset: 2px; }
}
</style>
"""
# The thumbs are drawn as CSS masks (Feather icons, MIT licence): emoji fonts are missing on many
# machines, and a missing glyph shows as an empty box.
_ICON = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' fill='none' stroke='black' "
    "stroke-width='2' stroke-linecap='round' stroke-linejoin='round'%3E%3Cpath d='{}'/%3E%3C/svg%3E"
)
_THUMBS = {
    "button.sb-rate.up": "M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3z"
    "M7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3",
    "button.sb-rate.down": "M10 15v4a3 3 0 0 0 3 3l4-9V2H5.72a2 2 0 0 0-2 1.7l-1.38 9a2 2 0 0 0 2 2.3z"
    "m7-13h2.67A2.31 2.31 0 0 1 22 4v7a2.31 2.31 0 0 1-2.33 2H17",
}
_THUMB_CSS = "".join(f'{button} {{ --thumb: url("{_ICON.format(path)}"); }}\n' for button, path in _THUMBS.items())
STYLE = STYLE.replace("/* thumbs */", _THUMB_CSS)

# Clicks on anything carrying data-document (a [n] marker, a passage card) open the viewer;
# copy buttons put their data-copy text on the clipboard.
CITE_JS = """
const open = (target) => {
  // "Back to the answer" returns here.
  window.sourcebookOpener = target;
  trigger('cite', {
    document_id: target.dataset.document, start: Number(target.dataset.start), end: Number(target.dataset.end)
  });
};
const writeClipboard = async (text) => {
  if (navigator.clipboard && window.isSecureContext) {
    try { await navigator.clipboard.writeText(text); return true; } catch (error) { /* the fallback below */ }
  }
  // A page served over plain http to other machines has no Clipboard API: copy a selected textarea.
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.style.position = 'fixed';
  area.style.top = '-1000px';
  document.body.appendChild(area);
  area.select();
  let done = false;
  try { done = document.execCommand('copy'); } catch (error) { done = false; }
  area.remove();
  return done;
};
const copy = async (button) => {
  const done = await writeClipboard(button.dataset.copy);
  button.focus();
  if (!button.dataset.label) button.dataset.label = button.textContent;
  button.textContent = done ? 'Copied' : 'Copy failed: select the text instead';
  clearTimeout(button.restore);
  button.restore = setTimeout(() => { button.textContent = button.dataset.label; }, 2000);
};
// A thumb (or Save comment) sends the answer's id, the rating and the comment box as it stands;
// RATE_JS adds that answer from the kept conversation. The conversation is drawn again with the
// rating set (SET_RATING_JS): the focus goes back to the control clicked, and comments being
// typed under other answers are put back.
const rate = (button) => {
  const box = button.closest('.rating');
  const rating = button.dataset.rating || box.dataset.rated || '';
  const drafts = {};
  element.querySelectorAll('.rating').forEach((other) => {
    drafts[other.dataset.turn] = other.querySelector('.rating-comment').value;
  });
  window.sourcebookRating = {
    answer: box.dataset.answer, turn: box.dataset.turn, control: button.dataset.rating || 'comment', drafts,
  };
  trigger('rate', {answer_id: box.dataset.answer, rating, comment: box.querySelector('.rating-comment').value});
};
watch('value', () => {
  const rated = window.sourcebookRating;
  if (!rated) return;
  window.sourcebookRating = null;
  element.querySelectorAll('.rating').forEach((box) => {
    const draft = rated.drafts[box.dataset.turn];
    if (box.dataset.turn !== rated.turn && draft !== undefined) box.querySelector('.rating-comment').value = draft;
  });
  const box = element.querySelector(`.rating[data-turn="${rated.turn}"]`);
  const control = box && (rated.control === 'comment' ? box.querySelector('.sb-rate-comment')
                                                      : box.querySelector(`.sb-rate.${rated.control}`));
  if (control) control.focus({preventScroll: true});
});
element.addEventListener('click', (event) => {
  // Under a question read with misspelt words corrected: ask it again, every word as typed.
  const typed = event.target.closest('button.sb-as-typed');
  if (typed && element.contains(typed)) {
    event.preventDefault();
    trigger('astyped', {question: typed.dataset.question, before: typed.dataset.before || ''});
    return;
  }
  const rater = event.target.closest('button.sb-rate, button.sb-rate-comment');
  if (rater && element.contains(rater)) { event.preventDefault(); rate(rater); return; }
  const button = event.target.closest('button.sb-copy');
  if (button && element.contains(button)) { event.preventDefault(); copy(button); return; }
  // A link opened with a modifier (new tab, new window) is the browser's to follow.
  const link = event.target.closest('a[href]');
  if (link && (event.ctrlKey || event.metaKey || event.shiftKey || event.altKey)) return;
  const target = event.target.closest('[data-document]');
  if (target && element.contains(target)) { event.preventDefault(); event.stopPropagation(); open(target); }
});
// Cards are focusable divs; buttons and links already turn Enter (and Space) into clicks.
element.addEventListener('keydown', (event) => {
  const target = event.target.closest('[data-document]');
  if (target && !['BUTTON', 'A'].includes(target.tagName) && (event.key === 'Enter' || event.key === ' ')) {
    event.preventDefault();
    open(target);
  }
});
"""

# Each turn carries its Markdown (app/export.py); joined as conversation_markdown joins them, the
# browser saves the whole as a file.
EXPORT_JS = f"""
() => {{
  const turns = [...document.querySelectorAll('#sb-conversation .sb-conversation > .turn')];
  if (!turns.length) return [];
  const parts = [{json.dumps(TITLE)}, ...turns.map((turn) => turn.dataset.markdown)];
  const markdown = parts.join({json.dumps(SEPARATOR)}) + '\\n';
  const link = document.createElement('a');
  link.href = URL.createObjectURL(new Blob([markdown], {{type: 'text/markdown;charset=utf-8'}}));
  link.download = '{EXPORT_FILE}';
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  return [];
}}
"""

# What the server needs of the earlier turns is the question before this one, which a follow-up is
# searched for with (app/conversation.py): an ask sends that, not the whole conversation kept here.
# The kept conversation is the last input of the events that ask.
ASK_JS = """
(...inputs) => {
  const saved = inputs.pop();
  const before = Array.isArray(saved) && saved.length ? saved[saved.length - 1] : null;
  return [...inputs, before && typeof before.question === 'string' ? [before.question] : []];
}
"""

# The answer comes back alone (its JSON, to keep, and its turn drawn); the browser adds it to the
# conversation it keeps and to the one shown, the latest turns only.
ADD_TURN_JS = f"""
(saved, conversation, added) => {{
  if (!added || !added.turn) return [saved, conversation];
  const kept = [...(Array.isArray(saved) ? saved : []), added.turn].slice(-{SAVED_TURNS});
  // A template parses the markup inert (nothing loads or runs) to add the turn to the rest.
  const page = document.createElement('template');
  page.innerHTML = conversation || '';
  let shown = page.content.querySelector('.sb-conversation');
  if (!shown) {{
    shown = document.createElement('div');
    shown.className = 'sb-conversation';
    page.content.replaceChildren(shown);
  }}
  shown.insertAdjacentHTML('beforeend', added.markup);
  while (shown.children.length > {SAVED_TURNS}) shown.firstElementChild.remove();
  // Rating boxes are numbered by their turn's place, as render_conversation numbers them.
  shown.querySelectorAll('.rating').forEach((box, n) => {{ box.dataset.turn = n; }});
  return [kept, page.innerHTML];
}}
"""

# A rating's record keeps the answer's question, text and citations (app/service.py rate): the
# rating sends that turn of the kept conversation (the one CITE_JS's rate() names), without the
# passages it offered, not the whole conversation. The kept conversation is the event's input.
RATE_JS = """
(saved) => {
  const rating = window.sourcebookRating;
  const turn = rating && Array.isArray(saved) ? saved.find((kept) => kept && kept.answer_id === rating.answer) : null;
  return [turn ? {...turn, passages: []} : null];
}
"""

# The rating comes back as the rated answer's rating box alone; it takes the place of that
# answer's box (of each turn that gave it), keeping the turn's number.
SET_RATING_JS = """
(conversation, rated) => {
  // Not rated (a warning says why) or rated as it was, the conversation is not drawn again:
  // there is no focus or comment to put back (CITE_JS's watch).
  if (!rated || !rated.answer_id) {
    window.sourcebookRating = null;
    return [conversation];
  }
  const page = document.createElement('template');
  page.innerHTML = conversation || '';
  page.content.querySelectorAll('.rating').forEach((box) => {
    if (box.dataset.answer !== rated.answer_id) return;
    const turn = box.dataset.turn;
    box.insertAdjacentHTML('afterend', rated.markup);
    box.nextElementSibling.dataset.turn = turn;
    box.remove();
  });
  if (page.innerHTML === conversation) window.sourcebookRating = null;
  return [page.innerHTML];
}
"""

SUGGEST_JS = """
element.addEventListener('click', (event) => {
  const target = event.target.closest('[data-question]');
  if (target && element.contains(target)) {
    event.preventDefault();
    trigger('suggest', {question: target.dataset.question});
  }
});
"""

# Undo (after a delete) and Restore (in the list of deleted documents) send the id they carry.
RESTORE_JS = """
element.addEventListener('click', (event) => {
  const button = event.target.closest('button.sb-restore');
  if (button && element.contains(button)) { event.preventDefault(); trigger('restore', {id: button.dataset.restore}); }
});
"""

# Strict: the cookie is never sent with a request another site's page starts.
TOKEN_COOKIE_JS = f"""
(token) => {{
  document.cookie = '{UPLOAD_TOKEN_COOKIE}=' + encodeURIComponent(token || '') + '; path=/; SameSite=Strict';
  return [];
}}
"""

# When a passage is opened: bring the highlighted span into view inside the viewer's own scroll
# box; beside the conversation the viewer is sticky, so the conversation stays where it is; on a
# narrow screen the viewer is a sheet over the conversation until "Back to the answer" (or Escape).
REVEAL_JS = """
const narrow = () => window.matchMedia('(max-width: 800px)').matches;
const reveal = () => {
  const viewer = element.querySelector('.sb-viewer[data-opened]');
  if (!viewer) return;
  document.body.classList.add('sb-reading');
  document.body.classList.remove('sb-viewer-closed');
  const mark = element.querySelector('#cited');
  const box = element.querySelector('.viewer-scroll');
  if (mark && box) box.scrollTop = Math.max(0, mark.offsetTop - box.clientHeight / 3);
  if (narrow()) {
    const back = element.querySelector('.viewer-back');
    if (back) back.focus({preventScroll: true});
    return;
  }
  const shown = box || viewer;
  const rect = shown.getBoundingClientRect();
  if (rect.top < 0 || rect.bottom > window.innerHeight) shown.scrollIntoView({block: 'nearest'});
};
const back = () => {
  document.body.classList.remove('sb-reading');
  const opener = window.sourcebookOpener;
  if (opener && opener.isConnected) {
    opener.focus({preventScroll: true});
    opener.scrollIntoView({block: 'nearest'});
  }
};
element.addEventListener('click', (event) => {
  if (event.target.closest('.viewer-back')) { event.preventDefault(); back(); }
  if (event.target.closest('.viewer-close')) {
    event.preventDefault();
    document.body.classList.add('sb-viewer-closed');
    back();
  }
});
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && narrow() && document.body.classList.contains('sb-reading')) back();
});
watch('value', () => requestAnimationFrame(reveal));
"""


# --- rendering (pure: records in, escaped HTML out) ---------------------------------------
# On a narrow screen the viewer is a sheet over the conversation; this returns to the answer.
BACK_BUTTON = '<button type="button" class="viewer-back" aria-label="Back to the answer">← Back to the answer</button>'
# Beside the conversation (a wide screen) the viewer closes instead; a citation opens it again.
CLOSE_BUTTON = (
    '<button type="button" class="viewer-close" aria-label="Close the document viewer" title="Close">×</button>'
)


def esc(text: object) -> str:
    """Escape untrusted text for HTML content and attribute values."""
    return html.escape(str(text), quote=True)


def highlight(text: str, start: int, end: int, *, mark_id: str | None = None) -> str:
    """Escape `text` with the span [start, end) wrapped in <mark>; the three parts are escaped apart."""
    start = max(0, min(start, len(text)))
    end = max(start, min(end, len(text)))
    attribute = f' id="{esc(mark_id)}"' if mark_id else ""
    return f"{esc(text[:start])}<mark{attribute}>{esc(text[start:end])}</mark>{esc(text[end:])}"


def _target(document_id: str, start: int, end: int) -> str:
    return f'data-document="{esc(document_id)}" data-start="{int(start)}" data-end="{int(end)}"'


def copy_button(label: str, text: str, *, describe: str) -> str:
    """A button that puts `text` on the clipboard (the page's script reads data-copy)."""
    return (
        f'<button type="button" class="sb-copy" data-copy="{esc(text)}" aria-label="{esc(describe)}" '
        f'title="{esc(describe)}">{esc(label)}</button>'
    )


def quote_in_context(text: str, start: int, end: int, *, chars: int = CARD_CONTEXT) -> str:
    """The span [start, end) of `text` marked, with about `chars` of whole words either side ("…" where cut), escaped.

    An empty span marks nothing: (0, 0) gives the opening of `text`.
    """
    first, last = max(0, start - chars), min(len(text), end + chars)
    if first > 0 and not text[first - 1].isspace():
        space = text.find(" ", first, start)
        first = space + 1 if space >= 0 else first
    if last < len(text) and not text[last].isspace():
        space = text.rfind(" ", end, last)
        last = space if space >= 0 else last
    before = ("…" if first > 0 else "") + text[first:start].lstrip("\n")
    after = text[end:last].rstrip("\n") + ("…" if last < len(text) else "")
    marked = f"<mark>{esc(text[start:end])}</mark>" if end > start else ""
    return f"{esc(before)}{marked}{esc(after)}"


def _card(
    place: Citation | Hit, body: str, *, kind: str, copies: tuple[str, str], what: str, label: str = "", whole: str = ""
) -> str:
    """A card for a quote or passage: where it is, `body`, the `whole` passage on request, buttons that copy it, its link.

    `copies` is what the buttons copy (plain text, Markdown); `what` names it for them ("quote [1]").
    """
    number = f'<span class="n">{esc(label)}</span>' if label else ""
    plain, markdown = copies
    actions = copy_button("Copy", plain, describe=f"Copy {what} with its citation") + copy_button(
        "Copy as Markdown", markdown, describe=f"Copy {what} as Markdown"
    )
    # The link opens the passage here on a plain click; a reader copies it or opens it in a new tab.
    link = (
        f'<a class="card-link" href="{esc(place.url)}" title="A link to this passage, to share or open later" '
        f"{_target(place.document_id, place.start, place.end)}>Link to this passage</a>"
    )
    expand = (
        '<details class="card-passage"><summary><span class="more">Show the whole passage</span>'
        f'<span class="less">Show less</span></summary><p class="card-whole">{whole}</p></details>'
        if whole
        else ""
    )
    return (
        f'<div class="sb-card {kind}"><div class="card-open" role="button" tabindex="0" title="Show in the document" '
        f"{_target(place.document_id, place.start, place.end)}>"
        f'<div class="card-place">{number}<span class="card-title">{esc(place.title)}</span> '
        f'<span class="card-detail">· {esc(" · ".join(place.place.labels()))}</span>'
        f'<div class="card-source">{esc(place.source)}</div></div>'
        f'<p class="card-text">{body}</p></div>{expand}'
        f'<div class="card-actions">{actions}{link}</div></div>'
    )


def citation_card(citation: Citation, passages: Sequence[Hit], *, base: str = "") -> str:
    """A cited quote with a little of its passage around it, the whole passage on request.

    Shows the quote alone when its passage is not at hand. Its buttons copy the quote with its
    citation, as plain text or as Markdown linking at `base`.
    """
    passage = next((p for p in passages if p.chunk_id == citation.chunk_id), None)
    offset = citation.start - passage.start if passage else -1
    whole = ""
    if passage and offset >= 0 and passage.text[offset : offset + len(citation.quote)] == citation.quote:
        body = quote_in_context(passage.text, offset, offset + len(citation.quote))
        whole = highlight(passage.text, offset, offset + len(citation.quote))
        if body == whole:
            whole = ""
    else:
        body = f"<mark>{esc(citation.quote)}</mark>"
    copies = (citation.cite(), citation.cite_markdown(base=base))
    return _card(
        citation, body, kind="citation-card", copies=copies, what=f"quote [{citation.n}]", label=f"[{citation.n}]",
        whole=whole,
    )


def hit_card(hit: Hit, *, base: str = "") -> str:
    """A passage offered as "see also": its opening, the whole of it on request, and buttons copying it with its citation.

    Nothing in it is quoted, so nothing is highlighted; Markdown links are made at `base`.
    """
    body = quote_in_context(hit.text, 0, 0, chars=CARD_OPENING)
    whole = esc(hit.text) if len(hit.text) > CARD_OPENING else ""
    copies = (quoted(hit.text, hit), quoted_markdown(hit.text, hit, base=base))
    return _card(hit, body, kind="passage-card", copies=copies, what=f"the passage from {hit.title}", whole=whole)


def answer_text(answer: Answer) -> str:
    """The answer's text, escaped, with each citation's [n] marker made a button that opens its source."""
    text, position, parts = answer.answer, 0, []
    for citation in answer.citations:
        marker = f"[{citation.n}]"
        # The marker follows its quote; looking after the quote skips a "[n]" inside quoted text.
        quote_at = text.find(citation.quote, position)
        found = text.find(marker, quote_at + len(citation.quote) if quote_at >= 0 else position)
        if found < 0:
            continue
        parts.append(esc(text[position:found]))
        parts.append(
            f'<button type="button" class="cite-marker" title="Show in the document" '
            f"{_target(citation.document_id, citation.start, citation.end)}>{marker}</button>"
        )
        position = found + len(marker)
    parts.append(esc(text[position:]))
    return "".join(parts)


RATING_WORDS = {"up": "helpful", "down": "not helpful"}


def render_rating(answer: Answer, rating: Mapping | None, *, turn: int) -> str:
    """An answer's thumbs (the one set is pressed) and comment box; `rating` is its stored record, if any."""
    rated = rating["rating"] if rating else ""
    comment = rating["comment"] if rating else ""
    thumbs = "".join(
        f'<button type="button" class="sb-rate {value}" data-rating="{value}" '
        f'aria-pressed="{"true" if rated == value else "false"}">{label}</button>'
        for value, label in (("up", "Helpful"), ("down", "Not helpful"))
    )
    if rated:
        state = f"You rated this answer {RATING_WORDS[rated]}" + (", with a comment." if comment else ".")
    else:
        state = "Not rated yet."
    return (
        f'<div class="rating" data-answer="{esc(answer.id)}" data-turn="{int(turn)}" data-rated="{esc(rated)}">'
        f'<span class="rating-ask">Was this answer helpful?</span>{thumbs}'
        f'<textarea class="rating-comment" rows="1" maxlength="{COMMENT_CHARS}" '
        f'aria-label="Comment on this answer (optional)" placeholder="Add a comment (optional)">{esc(comment)}</textarea>'
        f'<button type="button" class="sb-rate-comment">Save comment</button>'
        f'<span class="rating-state" role="status">{esc(state)}</span></div>'
    )


def render_turn(
    answer: Answer, *, base: str = "", rating: Mapping | None = None, turn: int = 0, before: str = ""
) -> str:
    """One question and its answer block: quoted answer and cited passages, or the not-found box.

    An answer's buttons copy its quotes, each followed by its citation (Markdown links at `base`);
    under it, its thumbs and comment box (`rating` is its stored record; `turn` its place in the conversation).
    A question read with misspelt words corrected says how, with a button that asks it again as
    typed (the "astyped" event of CITE_JS), after `before`, the question it followed, as it was asked.
    """
    question = f'<div class="question">{esc(answer.question)}</div>'
    if answer.corrections:
        question += (
            f'<div class="reading">{esc(answer.reading())} <button type="button" class="sb-as-typed" '
            f'data-question="{esc(answer.question)}" data-before="{esc(before)}" '
            f'title="Ask again, reading every word as typed">Ask as typed</button></div>'
        )
    if answer.answered:
        cards = "".join(citation_card(c, answer.passages, base=base) for c in answer.citations)
        actions = copy_button("Copy answer", answer.cite(), describe="Copy the answer's quotes with their citations")
        actions += copy_button(
            "Copy as Markdown", answer.cite_markdown(base=base), describe="Copy the answer's quotes as Markdown"
        )
        block = (
            f'<div class="answer answered"><p class="answer-text">{answer_text(answer)}</p>'
            f'<div class="answer-actions">{actions}</div><div class="cards">{cards}</div>'
            f"{render_rating(answer, rating, turn=turn)}</div>"
        )
    else:
        see_also = "".join(hit_card(hit, base=base) for hit in answer.passages)
        block = (
            f'<div class="answer not-found"><p class="not-found-message">{esc(answer.answer)}</p>'
            + (f'<h4 class="see-also">See also</h4><div class="cards">{see_also}</div>' if see_also else "")
            + f"{render_rating(answer, rating, turn=turn)}</div>"
        )
    # The turn carries its part of the conversation's Markdown export.
    return f'<div class="turn" data-markdown="{esc(turn_markdown(answer, base=base))}">{question}{block}</div>'


def render_conversation(turns: Sequence[Answer], *, base: str = "", ratings: Mapping[str, Mapping] | None = None) -> str:
    """The whole conversation, oldest turn first, each turn carrying its Markdown export (links made at `base`).

    `ratings` holds the stored rating of each rated answer, by the answer's id.
    """
    ratings = ratings or {}
    shown = "".join(
        render_turn(t, base=base, rating=ratings.get(t.id), turn=n, before=turns[n - 1].question if n else "")
        for n, t in enumerate(turns)
    )
    return f'<div class="sb-conversation">{shown}</div>'


def saved_turns(saved: object) -> list[Answer]:
    """The conversation a reader's browser kept, checked like any input from it; empty when it is not one."""
    if not isinstance(saved, list):
        return []
    try:
        return [Answer.from_dict(AskResponse.model_validate(turn).model_dump()) for turn in saved[-SAVED_TURNS:]]
    except (ValidationError, KeyError, TypeError) as error:
        log.info("a browser's saved conversation was not one and is dropped: %s", error)
        return []


def earlier_questions(sent: object) -> list[str]:
    """The earlier questions an ask's browser sent (ASK_JS: the one before), checked like any input; empty when not."""
    if not isinstance(sent, list) or len(sent) > SAVED_TURNS:
        return []
    if not all(isinstance(question, str) and len(question) <= MAX_QUESTION_CHARS for question in sent):
        return []
    return list(sent)


def page_origin(request: gr.Request | None) -> str:
    """The page's origin as the reader's browser names it ("http://host:port"), or "" when it is not known.

    Copied Markdown links start with it, so they work pasted into a file away from the page.
    """
    origin = request.headers.get("origin", "") if request is not None else ""
    return origin if _ORIGIN.fullmatch(origin) else ""


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def render_start(documents: Sequence[StoredDocument], counts: tuple[int, int], suggestions: Sequence[str]) -> str:
    """The onboarding screen: what the library holds and questions to start with."""
    n_documents, n_passages = counts
    if not n_documents:
        return (
            '<div class="sb-start"><h2>Ask your documents</h2><p class="corpus-counts empty">'
            "The library is empty. Add documents in the <strong>Sources</strong> tab, then ask about them.</p></div>"
        )
    titles = "".join(f"<li>{esc(d.title)}</li>" for d in documents[:START_TITLES])
    more = len(documents) - START_TITLES
    if more > 0:
        titles += f'<li class="more">and {_plural(more, "more document")}</li>'
    buttons = "".join(
        f'<button type="button" class="suggestion" data-question="{esc(q)}">{esc(q)}</button>' for q in suggestions
    )
    tries = f'<h3>Try asking</h3><div class="suggestions">{buttons}</div>' if suggestions else ""
    return (
        '<div class="sb-start"><h2>Ask your documents</h2>'
        f'<p class="corpus-counts">The library holds <strong>{_plural(n_documents, "document")}</strong> '
        f"in <strong>{_plural(n_passages, 'passage')}</strong>. Every answer quotes them word for word, "
        "with a citation you can open.</p>"
        f'<ul class="doc-titles">{titles}</ul>{tries}</div>'
    )


def render_viewer(document: Document, start: int, end: int, *, opened: int = 0, changed: str = "") -> str:
    """The whole document (or a large window of it) with the cited span highlighted as <mark id="cited">.

    `changed` says, above the text, that the span no longer holds what a link to it was made for.
    """
    text = document.text
    start = max(0, min(start, len(text)))
    end = max(start, min(end, len(text)))
    first, last = 0, len(text)
    if len(text) > VIEWER_CHARS:
        first = max(0, min(start - VIEWER_CHARS // 2, len(text) - VIEWER_CHARS))
        last = first + VIEWER_CHARS
    place = Place(
        document.heading_at(start), document.page_at(start), document.line_at(start), document.line_at(max(start, end - 1))
    )
    note = (
        f'<div class="viewer-note">Showing characters {first:,}–{last:,} of {len(text):,}.</div>'
        if (first, last) != (0, len(text))
        else ""
    )
    body = highlight(text[first:last], start - first, end - first, mark_id="cited")
    # data-opened changes on every click, so opening the same span again re-renders and scrolls.
    return (
        f'<div class="sb-viewer" data-opened="{int(opened)}"><div class="viewer-head">{CLOSE_BUTTON}{BACK_BUTTON}'
        f'<div class="viewer-title">{esc(document.title)}</div>'
        f'<div class="viewer-place">{esc(" · ".join(place.labels()))} · '
        f'<span class="viewer-source">{esc(document.source)}</span></div>'
        + (f'<div class="viewer-changed" role="status">{esc(changed)}</div>' if changed else "")
        + f'{note}</div><div class="viewer-scroll"><div class="viewer-text">{body}</div></div></div>'
    )


def render_span(document: Document, start: int, end: int, *, opened: int = 0, expected: str | None = None) -> str:
    """The viewer at a span of the document, or a plain message when the document no longer has that span.

    `expected` is the hash of the span's text a link carries (span_hash): when the text there now
    has another, the document is opened at the span with a note that the passage has changed.
    """
    if not 0 <= start < end <= len(document.text):
        return render_viewer_message(
            f"The passage at characters {start:,}–{end:,} is no longer in “{document.title}”, which now has "
            f"{len(document.text):,} characters: the document has changed since the link was made.",
            opened=opened,
        )
    changed = ""
    if expected is not None and span_hash(document.text[start:end]) != expected:
        changed = (
            "This passage has changed since the link was made: the text marked below is what "
            f"“{document.title}” holds at its place now, not the text the link was made for."
        )
    return render_viewer(document, start, end, opened=opened, changed=changed)


def linked_span(params: Mapping[str, str]) -> tuple[str, int, int, str | None] | None:
    """The document id, span and text hash a link to the page names (`?doc=ID&start=N&end=M&h=H`), or None.

    None when it names no document; the hash is None for a link made before links carried one.
    Raises ValueError, naming the bad value, when the span is not two whole numbers or the hash not 8 hex digits.
    """
    document_id = params.get("doc", "").strip()
    if not document_id:
        return None
    span = []
    for name in ("start", "end"):
        value = params.get(name, "")
        if not re.fullmatch(r"[0-9]{1,12}", value):
            raise ValueError(f"its {name} must be a whole number of characters, got {value[:40]!r}")
        span.append(int(value))
    expected = params.get("h") or None
    if expected is not None and not re.fullmatch(r"[0-9a-f]{8}", expected):
        raise ValueError(f"its h must be 8 hexadecimal digits, got {expected[:40]!r}")
    return document_id, span[0], span[1], expected


def render_viewer_message(message: str, *, opened: int = 0) -> str:
    """The viewer before a citation is opened, or (`opened`) why the one just opened cannot be shown."""
    if not opened:
        return f'<div class="sb-viewer"><div class="viewer-empty">{esc(message)}</div></div>'
    return (
        f'<div class="sb-viewer" data-opened="{int(opened)}"><div class="viewer-head">{CLOSE_BUTTON}{BACK_BUTTON}</div>'
        f'<div class="viewer-empty">{esc(message)}</div></div>'
    )


def render_upload_results(results: Sequence[UploadResult]) -> str:
    """One line per uploaded file: its name, what became of it and why if it failed."""
    lines = []
    for result in results:
        reason = f": {esc(result.reason)}" if result.reason else ""
        lines.append(
            f'<li class="upload-result"><span class="filename">{esc(result.filename)}</span> '
            f'<span class="status status-{esc(result.status)}">{esc(result.status)}</span>{reason}</li>'
        )
    return f'<div class="sb-results"><ul>{"".join(lines)}</ul></div>'


def render_upload_progress(done: Sequence[UploadResult], total: int, current: str) -> str:
    """An upload under way: files done of the total, the file being indexed now, and the results so far."""
    finished = "".join(
        f'<li class="upload-result"><span class="filename">{esc(r.filename)}</span> '
        f'<span class="status status-{esc(r.status)}">{esc(r.status)}</span></li>'
        for r in done
    )
    return (
        f'<div class="sb-results sb-progress" role="status"><progress value="{len(done)}" max="{int(total)}"></progress> '
        f'<span class="upload-progress">{len(done)} of {_plural(total, "file")} done; indexing '
        f'<span class="filename">{esc(current)}</span>…</span><ul>{finished}</ul></div>'
    )


def render_ingest_status(progress: IngestProgress | None, *, now: float) -> str:
    """The latest ingest of files, whatever started it: files done of the total, the file read and the time left, or how it ended."""
    if progress is None:
        return '<div class="sb-ingest"></div>'
    by = esc(progress.origin)
    if progress.running:
        done, total = int(progress.done), int(progress.total)
        doing = (
            f'reading <span class="filename">{esc(progress.current)}</span>' if progress.current else "embedding passages"
        )
        left = progress.seconds_left()
        # Estimated when the record was written; the time since has gone by.
        time_left = "" if left is None else f"; about {_duration(max(0.0, left - (now - progress.updated)))} left"
        return (
            f'<div class="sb-results sb-ingest" role="status"><progress value="{done}" max="{max(total, 1)}"></progress> '
            f'<span class="ingest-progress">Indexing, started by {by}: {done} of {_plural(total, "file")} done; '
            f"{doing}{time_left}…</span></div>"
        )
    took = _duration(progress.finished - progress.started)
    if progress.error:
        return (
            f'<div class="sb-results sb-ingest"><span class="ingest-done status status-failed">The last ingest, started by {by}, '
            f"stopped at {_when(progress.finished)} after {took}: {esc(progress.error)}</span></div>"
        )
    outcome = ", ".join(f"{int(count)} {esc(what)}" for what, count in (progress.outcome or {}).items())
    return (
        f'<div class="sb-results sb-ingest"><span class="ingest-done">The last ingest, started by {by}, finished at '
        f"{_when(progress.finished)} in {took}: {outcome}.</span></div>"
    )


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def render_message(message: str, *, status: str) -> str:
    """A one-line outcome (deleted, failed) in the Sources tab."""
    return f'<div class="sb-results"><span class="status status-{esc(status)}">{esc(message)}</span></div>'


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def render_gaps(gaps: Sequence[Gap]) -> str:
    """The questions the documents did not answer, most asked first: each wording, when, the nearest documents."""
    if not gaps:
        return (
            '<div class="sb-gaps"><p class="empty">No gaps: every question asked so far was answered '
            "from the documents (or none was asked yet).</p></div>"
        )
    rows = []
    for gap in gaps:
        others = "".join(f"<li>{esc(q)}</li>" for q in gap.questions if q != gap.question)
        near = "".join(
            f'<li><span class="near-title">{esc(d.title)}</span> <span class="near-source">{esc(d.source)}</span> '
            f'<span class="near-times">({_plural(d.times, "time")})</span></li>'
            for d in gap.documents
        )
        rows.append(
            f'<tr class="gap"><td class="count">{int(gap.count)}</td>'
            f'<td><span class="gap-question">{esc(gap.question)}</span>'
            + (f'<ul class="wordings">{others}</ul>' if others else "")
            + f'</td><td class="when">{esc(_when(gap.first_asked))}<br>{esc(_when(gap.last_asked))}</td>'
            + (f'<td><ul class="near">{near}</ul></td>' if near else "<td></td>")
            + "</tr>"
        )
    return (
        '<div class="sb-gaps"><table><thead><tr><th>asked</th><th>question (and its other wordings)</th>'
        "<th>first / last asked</th><th>nearest documents</th></tr></thead>"
        f'<tbody>{"".join(rows)}</tbody></table></div>'
    )


def restore_button(label: str, kept_id: str, *, describe: str) -> str:
    """A button that restores a deleted document (the page's script sends data-restore)."""
    return (
        f'<button type="button" class="sb-restore" data-restore="{esc(kept_id)}" aria-label="{esc(describe)}">'
        f"{esc(label)}</button>"
    )


def render_deletion(deletion: Deletion) -> str:
    """What a delete did: the document gone, where its file is kept, and Undo."""
    said = f"Deleted {deletion.title} ({_plural(deletion.chunks_removed, 'passage')})."
    if deletion.kept_as is None:
        return render_message(f"{said} It had no file in the corpus folder to keep.", status="deleted")
    undo = restore_button("Undo", deletion.document_id, describe=f"Undo: restore {deletion.title}")
    return (
        f'<div class="sb-results"><span class="status status-deleted">{esc(said)}</span> '
        f'<span class="kept">Its file is kept in the corpus folder as <code>{esc(deletion.kept_as)}</code>.</span>'
        f"{undo}</div>"
    )


def render_deleted(kept: Sequence[KeptFile]) -> str:
    """The files kept in the corpus folder's .deleted/ (deleted or replaced), most recent first, each with Restore."""
    if not kept:
        return '<div class="sb-deleted"><p class="sb-note">No deleted documents.</p></div>'
    items = []
    for file in kept:
        taken = " · a file of this name is in the corpus folder now" if file.name_taken else ""
        items.append(
            f'<li class="kept-file"><span class="kept-name">{esc(file.name)}</span>'
            f'{restore_button("Restore", file.id, describe=f"Restore {file.name}")}<br>'
            f'<span class="kept-detail">set aside {esc(_when(file.set_aside))} · {esc(human_size(file.size))}'
            f'{esc(taken)} · kept as </span><span class="kept-as">{esc(file.kept_as)}</span></li>'
        )
    return f'<div class="sb-deleted"><ul>{"".join(items)}</ul></div>'


def human_size(size: int) -> str:
    """Bytes as a short readable size."""
    for unit in ("B", "kB", "MB"):
        if size < 1000 or unit == "MB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1000
    return f"{size:,.1f} MB"


def document_rows(documents: Sequence[StoredDocument]) -> list[list[str | int]]:
    """The Sources table, newest first (a fresh upload shows at the top): title, source, size, passages, updated, health."""
    newest_first = sorted(documents, key=lambda d: (-d.updated, d.title.casefold()))
    return [
        [d.title, d.source, human_size(d.size), d.chunks, datetime.fromtimestamp(d.updated).strftime("%Y-%m-%d %H:%M"),
         health_cell(d.health)]
        for d in newest_first
    ]


def health_cell(health: DocumentHealth | None) -> str:
    """A document's health as the Sources table says it: "ok", or each warning (as `sourcebook docs` words it)."""
    if health is None:
        return "not checked yet: run sourcebook ingest"
    if not health.warnings:
        return "ok"
    return " ".join(f"⚠ {warning.message}" for warning in health.warnings)


def document_choices(documents: Sequence[StoredDocument]) -> list[tuple[str, str]]:
    """Dropdown choices for deleting, by title: (title and source, document id)."""
    by_title = sorted(documents, key=lambda d: (d.title.casefold(), d.source))
    return [(f"{d.title} ({d.source})", d.id) for d in by_title]


def received_uploads(paths: Sequence[str], uploaded: set[str], folder: Path) -> list[Path]:
    """The files an upload event names, each one Gradio received as an upload into `folder`, or ValueError naming one that is not."""
    # A copy first: Gradio's upload route adds to the set from another thread.
    received = {Path(path).resolve() for path in list(uploaded)}
    folder = folder.resolve()
    files = []
    for path in paths:
        resolved = Path(path).resolve()
        # An event's body is the browser's to write: a path there is only trusted if Gradio's
        # upload route put that very file in its upload folder.
        if resolved not in received or not resolved.is_relative_to(folder) or not resolved.is_file():
            raise ValueError(f"{Path(path).name!r} was not uploaded to this page")
        files.append(resolved)
    return files


def discard_uploads(files: Sequence[Path], uploaded: set[str], folder: Path) -> None:
    """Delete the temporary copies of handled uploads (and their folders, once empty) from Gradio's upload folder."""
    folder = folder.resolve()
    for file in files:
        uploaded.difference_update({path for path in list(uploaded) if Path(path).resolve() == file})
        if not file.is_relative_to(folder):
            continue
        file.unlink(missing_ok=True)
        try:
            # Gradio puts each upload in a folder of its own.
            if file.parent != folder:
                file.parent.rmdir()
        except OSError:
            pass


# --- the page ------------------------------------------------------------------------------
def locked_message(token: str | None, change: str, changed: str) -> str:
    """Why a change was refused: whether the token was missing or wrong, and that nothing changed."""
    if not (token or "").strip():
        return f"Enter the API token above to {change} documents; nothing was {changed}."
    return f"That API token is not the right one; nothing was {changed}."


class PageEvents:
    """What the page's events do, each a method over the one service.

    Per-reader state (the conversation's turns, kept in the reader's browser) comes in and goes out
    through the event, never kept here: one PageEvents serves every reader of the page.
    """

    def __init__(self, service: Sourcebook) -> None:
        self.service = service
        # The files Gradio's upload route received: set once the page is built (Blocks.upload_file_set).
        self.uploaded: set[str] = set()

    # --- the chat tab ---
    def start_screen(self) -> str:
        """The start screen at once, with the suggested questions already found for the library as it is."""
        service = self.service
        return render_start(service.documents(), service.counts(), service.known_suggestions(SUGGESTIONS))

    def start_suggestions(self):
        """The start screen with its suggested questions, found by asking them (seconds on a slow
        machine); nothing to redraw when `start_screen` already showed them."""
        service = self.service
        if service.known_suggestions(SUGGESTIONS):
            return gr.skip()
        return render_start(service.documents(), service.counts(), service.suggested_questions(SUGGESTIONS))

    def ask(self, question: str, earlier: list, request: gr.Request, *, as_typed: bool = False):
        """Answer a question that follows `earlier` ones; return the new turn alone (ADD_TURN_JS adds it to the rest).

        The turn is its JSON, which the reader's browser keeps, and its markup, with the answer's
        stored rating (an answer is the same answer, and rated, when asked again).
        """
        question = (question or "").strip()
        if not question:
            return gr.skip(), None, gr.skip(), gr.skip()
        history = earlier_questions(earlier)
        answer = self.service.ask(question, history=history, as_typed=as_typed)
        rating = self.service.feedback_for(answer.id)
        markup = render_turn(answer, base=page_origin(request), rating=rating, before=history[-1] if history else "")
        return "", {"turn": answer.to_dict(), "markup": markup}, gr.update(visible=False), gr.update(visible=True)

    def ask_as_typed(self, event: gr.EventData, request: gr.Request):
        """Ask a question again with every word read as typed ("Ask as typed" under a reading), after
        the question it followed; both come from the browser and are checked like any input."""
        before = getattr(event, "before", "")
        return self.ask(str(getattr(event, "question", "")), [before] if before else [], request, as_typed=True)

    def conversation(self, turns: Sequence[Answer], request: gr.Request | None) -> str:
        """The conversation drawn with each answer's stored rating."""
        ratings = {turn.id: rating for turn in turns if (rating := self.service.feedback_for(turn.id))}
        return render_conversation(turns, base=page_origin(request), ratings=ratings)

    def ask_suggested(self, earlier: list, event: gr.EventData, request: gr.Request):
        return self.ask(str(getattr(event, "question", "")), earlier, request)

    def restore(self, saved: list, request: gr.Request):
        """Show the conversation the reader's browser kept, as the page loads."""
        turns = saved_turns(saved)
        if not turns:
            return gr.skip(), gr.skip(), gr.skip()
        return self.conversation(turns, request), gr.update(visible=False), gr.update(visible=True)

    def show_passage(self, document_id: str, start: int, end: int, expected: str | None = None) -> str:
        # `document_id` is looked up in the library, never used as a path.
        try:
            document = self.service.document(document_id)
        except DocumentNotFound:
            return render_viewer_message(
                "That document is no longer in the library: it may have been deleted.", opened=time.monotonic_ns()
            )
        return render_span(document, start, end, opened=time.monotonic_ns(), expected=expected)

    def open_citation(self, event: gr.EventData) -> str:
        # The event data comes from the browser: checked like any other input.
        try:
            document_id = str(getattr(event, "document_id", ""))
            start, end = int(getattr(event, "start", 0)), int(getattr(event, "end", 0))
        except (TypeError, ValueError):
            return render_viewer_message("That citation could not be opened.", opened=time.monotonic_ns())
        return self.show_passage(document_id, start, end)

    def open_link(self, request: gr.Request):
        """Open the passage a link to the page names (`/?doc=ID&start=N&end=M&h=H`), if it names one."""
        try:
            link = linked_span(dict(request.query_params))
        except ValueError as error:
            return render_viewer_message(
                f"That link to a passage cannot be opened: {error}.", opened=time.monotonic_ns()
            )
        return gr.skip() if link is None else self.show_passage(*link)

    def new_conversation(self):
        return [], render_conversation([]), gr.update(visible=True), gr.update(visible=False)

    def rate(self, sent: object, event: gr.EventData) -> dict | None:
        """Rate an answer of this reader's conversation (the last rating stands), with its comment box as it stands.

        `sent` is that answer's turn (RATE_JS); what comes back is its rating box alone, for
        SET_RATING_JS to put in place, or None when nothing was rated (a warning says why).
        """
        # The turn and the event data come from the browser: the turn is checked like the kept
        # conversation, its id made again from what it says must be the one rated, and the rating
        # and comment are checked like any input.
        answer_id = str(getattr(event, "answer_id", ""))
        answer = next((turn for turn in saved_turns([sent]) if turn.id == answer_id), None)
        if answer is None:
            gr.Warning("That answer is no longer in this conversation: it was not rated.")
            return None
        rating = str(getattr(event, "rating", ""))
        if rating not in RATING_WORDS:
            gr.Warning("Choose Helpful or Not helpful first, then the comment is saved with it.")
            return None
        comment = getattr(event, "comment", None)
        comment = comment.strip() if isinstance(comment, str) else None
        if comment is not None and len(comment) > COMMENT_CHARS:
            gr.Warning(f"A comment is at most {COMMENT_CHARS:,} characters, this one {len(comment):,}: it was not saved.")
            return None
        record = self.service.rate(answer, rating, comment=comment)
        # Its place in the conversation is the page's to keep (SET_RATING_JS).
        return {"answer_id": answer.id, "markup": render_rating(answer, record, turn=0)}

    # --- the gaps tab ---
    def gaps_view(self, token: str) -> str:
        """The gaps, for a reader with the token (they show what people asked); may ask again up to 20 questions."""
        if not self.service.token_accepted(token):
            reason = "That API token is not the right one" if (token or "").strip() else "The gaps show what people asked"
            return (
                f'<div class="sb-gaps"><p class="locked">{esc(reason)}: enter the API token on the Sources tab, '
                "then open this tab again.</p></div>"
            )
        return render_gaps(self.service.gaps())

    # --- the sources tab ---
    def sources_view(self) -> tuple:
        documents = self.service.documents()
        return document_rows(documents), gr.update(choices=document_choices(documents), value=None)

    def ingest_status(self, seen: float | None):
        """The latest ingest, whatever started it; the table again once one finishes while the tab is open.

        `seen` (the reader's session) is when the ingest last shown finished: 0.0 for none or a
        running one, None before the first look (the table was just refreshed as the tab opened).
        """
        progress = self.service.ingest_progress()
        status = render_ingest_status(progress, now=time.time())
        finished = (progress.finished or 0.0) if progress else 0.0
        if seen is None or not finished or finished == seen:
            return status, gr.skip(), gr.skip(), finished
        documents = self.service.documents()
        # The choices only: the document a reader chose to delete stays chosen.
        return status, document_rows(documents), gr.update(choices=document_choices(documents)), finished

    def upload(self, paths: list[str] | None, token: str):
        """Add uploaded files, showing which file is being indexed (files done of total) as it goes."""
        if not paths:
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        folder = Path(get_upload_folder())
        try:
            received = received_uploads(paths, self.uploaded, folder)
        except ValueError as error:
            yield render_message(f"Nothing was added: {error}.", status="failed"), gr.skip(), gr.skip(), None
            return
        try:
            yield from self._add_uploads(received, token)
        except (OSError, sqlite3.OperationalError) as error:
            if not disk_full(error):
                raise
            log.error("disk full during a page upload: %s", error)
            yield render_message(DISK_FULL_MESSAGE.format(changed="added"), status="failed"), *self.sources_view(), None
        finally:
            # Added to the corpus or refused, the temporary copies go.
            discard_uploads(received, self.uploaded, folder)

    def _add_uploads(self, paths: list[Path], token: str):
        service = self.service
        if not service.token_accepted(token):
            yield render_message(locked_message(token, "add", "added"), status="failed"), gr.skip(), gr.skip(), None
            return
        uploads = [Upload.of_path(path) for path in paths]
        try:
            # Gradio keeps the upload on disk: too many files or bytes are refused without reading any in.
            service.check_upload(uploads)
        except ValueError as error:
            yield render_message(f"Nothing was added: {error}.", status="failed"), gr.skip(), gr.skip(), None
            return
        # One upload (one progress record for every Sources view), its results taken as each file
        # is indexed, so this page shows how far it is: the file being indexed, and those done.
        results: list[UploadResult] = []
        yield render_upload_progress(results, len(uploads), uploads[0].name), gr.skip(), gr.skip(), gr.skip()
        for result in service.upload_each(uploads):
            results.append(result)
            if len(results) < len(uploads):
                upload = uploads[len(results)]
                yield render_upload_progress(results, len(uploads), upload.name), gr.skip(), gr.skip(), gr.skip()
        rows, choices = self.sources_view()
        # Clearing the file box makes room for the next drop; the results stay listed below it.
        yield render_upload_results(results), rows, choices, None

    def confirm_delete(self, document_id: str | None):
        """Ask before a delete: which document, and that its file is kept; remember which for Yes."""
        if not document_id:
            return render_message("Choose a document to delete first.", status="failed"), gr.skip(), None
        try:
            document = self.service.document(document_id)
        except DocumentNotFound:
            return render_message("That document is no longer in the library.", status="failed"), gr.skip(), None
        question = (
            f"Delete {document.title} ({document.source})? Its file is moved into the corpus folder's .deleted/ "
            "and can be restored."
        )
        return render_message(question, status="confirm"), gr.update(visible=True), document_id

    def delete(self, document_id: str | None, token: str):
        """Delete the document the reader confirmed; say where its file went, with Undo."""
        service = self.service
        hidden = gr.update(visible=False)
        if not service.token_accepted(token):
            locked = render_message(locked_message(token, "delete", "deleted"), status="failed")
            return locked, gr.skip(), gr.skip(), hidden, gr.skip()
        if not document_id:
            chosen = render_message("Choose a document to delete first.", status="failed")
            return chosen, *self.sources_view(), hidden, gr.skip()
        try:
            deletion = service.delete_document(document_id)
        except DocumentNotFound:
            gone = render_message("That document is no longer in the library.", status="failed")
            return gone, *self.sources_view(), hidden, gr.skip()
        except (OSError, sqlite3.OperationalError) as error:
            if not disk_full(error):
                raise
            log.error("disk full during a page delete: %s", error)
            full = render_message(DISK_FULL_MESSAGE.format(changed="deleted"), status="failed")
            return full, *self.sources_view(), hidden, gr.skip()
        return render_deletion(deletion), *self.sources_view(), hidden, render_deleted(service.deleted())

    def deleted_view(self, token: str) -> str:
        """The deleted documents with Restore, for a reader with the token (as GET /api/deleted)."""
        if not self.service.token_accepted(token):
            return '<div class="sb-deleted"><p class="sb-note">Enter the API token above to see deleted documents.</p></div>'
        return render_deleted(self.service.deleted())

    def restore_document(self, token: str, event: gr.EventData):
        """Restore a deleted document (Undo, or Restore in the list) by the id its button carries."""
        service = self.service
        if not service.token_accepted(token):
            return render_message(locked_message(token, "restore", "restored"), status="failed"), gr.skip(), gr.skip(), gr.skip()
        # The id comes from the browser: the service looks it up among the kept files, never as a path.
        kept_id = str(getattr(event, "id", ""))
        try:
            restored = service.restore(kept_id)
        except (NameTaken, DocumentNotFound, ValueError, IngestError) as error:
            # KeptFileNotFound is a DocumentNotFound; an IngestError's reason names the file.
            message = getattr(error, "reason", None) or (error.args[0] if error.args else str(error))
            failed = render_message(f"Nothing was restored: {message}", status="failed")
            return failed, *self.sources_view(), render_deleted(service.deleted())
        except (OSError, sqlite3.OperationalError) as error:
            if not disk_full(error):
                raise
            log.error("disk full during a page restore: %s", error)
            full = render_message(DISK_FULL_MESSAGE.format(changed="restored"), status="failed")
            return full, *self.sources_view(), render_deleted(service.deleted())
        message = f"Restored {restored.title} as {restored.name} ({_plural(restored.chunks, 'passage')})."
        return render_message(message, status="restored"), *self.sources_view(), render_deleted(service.deleted())


@dataclass(frozen=True)
class ChatTab:
    """The chat tab's components that events read or write."""

    start: gr.HTML
    conversation: gr.HTML
    question: gr.Textbox
    ask: gr.Button
    actions: gr.Row
    restart: gr.Button
    export: gr.Button
    viewer: gr.HTML
    # The turn an ask returns, on its way into the conversation (ADD_TURN_JS); never shown.
    added: gr.JSON
    # The rating box a rating returns, on its way into the conversation (SET_RATING_JS); never shown.
    rated: gr.JSON


@dataclass(frozen=True)
class SourcesTab:
    """The sources tab's components that events read or write."""

    tab: gr.Tab
    ingest_status: gr.HTML
    ingest_timer: gr.Timer
    token: gr.Textbox
    table: gr.Dataframe
    files: gr.File
    upload_results: gr.HTML
    chosen: gr.Dropdown
    delete: gr.Button
    confirm_row: gr.Row
    confirm: gr.Button
    cancel: gr.Button
    delete_result: gr.HTML
    deleted: gr.HTML


def chat_tab() -> ChatTab:
    """Lay out the chat tab: the start screen and conversation beside the document viewer."""
    with gr.Tab("Chat", id="chat"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=360):
                start = gr.HTML(
                    '<div class="sb-start">Opening the library…</div>',
                    elem_id="sb-start",
                    js_on_load=SUGGEST_JS,
                )
                conversation = gr.HTML(render_conversation([]), elem_id="sb-conversation", js_on_load=CITE_JS)
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        placeholder="Ask a question about the documents…",
                        label="Question",
                        show_label=False,
                        container=False,
                        scale=6,
                        elem_id="sb-question",
                        autofocus=True,
                    )
                    ask = gr.Button("Ask", variant="primary", scale=1, min_width=90, elem_id="sb-ask")
                # Each answer carries its own thumbs and comment box (render_rating).
                with gr.Row(visible=False, elem_id="sb-conversation-actions") as actions:
                    restart = gr.Button("New conversation", size="sm", elem_id="sb-new", scale=0, min_width=150)
                    export = gr.Button("Export as Markdown", size="sm", elem_id="sb-export", scale=0, min_width=160)
            with gr.Column(scale=2, min_width=320, elem_id="sb-viewer-column"):
                viewer = gr.HTML(
                    render_viewer_message("Click a citation, its [n] marker or a passage to read it in its document."),
                    elem_id="sb-viewer",
                    js_on_load=REVEAL_JS,
                )
        # Inside the tab: a Tabs block takes each child for a tab.
        added = gr.JSON(None, visible=False, elem_id="sb-added")
        rated = gr.JSON(None, visible=False, elem_id="sb-rated")
    return ChatTab(start, conversation, question, ask, actions, restart, export, viewer, added, rated)


@dataclass(frozen=True)
class GapsTab:
    """The gaps tab's components that events read or write."""

    tab: gr.Tab
    refresh: gr.Button
    listing: gr.HTML


def gaps_tab() -> GapsTab:
    """Lay out the gaps tab: the questions the documents did not answer, listed when the tab opens."""
    with gr.Tab("Gaps", id="gaps") as tab:
        gr.HTML(
            '<p class="sb-note">Questions the documents did not answer, grouped by meaning, most asked '
            "first, with the documents that came nearest: what people look for and cannot find.</p>",
            js_on_load=None,
        )
        refresh = gr.Button("Refresh", size="sm", scale=0, min_width=100, elem_id="sb-gaps-refresh")
        listing = gr.HTML('<div class="sb-gaps"></div>', elem_id="sb-gaps", js_on_load=None)
    return GapsTab(tab, refresh, listing)


def sources_tab(*, token_needed: bool) -> SourcesTab:
    """Lay out the sources tab: the token (when one is configured), the documents, upload and delete."""
    with gr.Tab(SOURCES_TAB, id="sources") as tab:
        # Changing the library takes the same token as the HTTP API, when one is configured.
        token = gr.Textbox(
            label="API token (needed to add or delete documents)",
            type="password",
            visible=token_needed,
            elem_id="sb-token",
        )
        # The latest ingest of files, read from its progress file while this tab is open.
        ingest_status = gr.HTML(render_ingest_status(None, now=0.0), elem_id="sb-ingest-status", js_on_load=None)
        ingest_timer = gr.Timer(INGEST_POLL_SECONDS, active=False)
        table = gr.Dataframe(
            headers=TABLE_HEADERS,
            datatype=["str", "str", "str", "number", "str", "str"],
            interactive=False,
            wrap=True,
            column_widths=["24%", "24%", "9%", "8%", "12%", "23%"],
            label="Documents",
            elem_id="sb-documents",
        )
        with gr.Row(equal_height=False):
            with gr.Column():
                files = gr.File(
                    label="Add documents (.txt, .md, .html, .pdf, .docx): drop files here or click",
                    file_count="multiple",
                    type="filepath",
                    elem_id="sb-upload",
                )
                upload_results = gr.HTML(elem_id="sb-upload-results", js_on_load=None)
            with gr.Column():
                chosen = gr.Dropdown(label="Document to delete", choices=[], elem_id="sb-delete-choice")
                delete = gr.Button("Delete document", variant="stop", elem_id="sb-delete")
                delete_result = gr.HTML(elem_id="sb-delete-result", js_on_load=RESTORE_JS)
                with gr.Row(visible=False, elem_id="sb-delete-confirm") as confirm_row:
                    confirm = gr.Button("Yes, delete", variant="stop", size="sm", elem_id="sb-delete-yes")
                    cancel = gr.Button("Cancel", size="sm", elem_id="sb-delete-cancel")
                with gr.Accordion("Deleted documents", open=False, elem_id="sb-deleted-section"):
                    deleted = gr.HTML(elem_id="sb-deleted", js_on_load=RESTORE_JS)
    return SourcesTab(
        tab, ingest_status, ingest_timer, token, table, files, upload_results, chosen, delete, confirm_row, confirm, cancel, delete_result, deleted
    )


def wire_chat(events: PageEvents, chat: ChatTab, turns: gr.BrowserState) -> None:
    """Connect the chat tab's events: asking, suggestions, citations, ratings, a new conversation, the export."""
    # An ask sends the question and the one before it (ASK_JS); its answer is added to the
    # conversation in the browser (ADD_TURN_JS), so neither way carries the whole conversation.
    asked = [chat.question, chat.added, chat.start, chat.actions]
    answering = {"js": ASK_JS, "show_progress_on": [chat.question, chat.conversation]}
    for asking in (
        chat.ask.click(events.ask, [chat.question, turns], asked, **answering),
        chat.question.submit(events.ask, [chat.question, turns], asked, **answering),
        chat.start.suggest(events.ask_suggested, [turns], asked, **answering),
        chat.conversation.astyped(events.ask_as_typed, None, asked, show_progress_on=answering["show_progress_on"]),
    ):
        asking.success(None, [turns, chat.conversation, chat.added], [turns, chat.conversation], js=ADD_TURN_JS)
    chat.conversation.cite(events.open_citation, None, chat.viewer)
    # A rating sends the rated turn (RATE_JS) and gets back its rating box (SET_RATING_JS).
    chat.conversation.rate(events.rate, [turns], chat.rated, js=RATE_JS, show_progress="hidden").success(
        None, [chat.conversation, chat.rated], chat.conversation, js=SET_RATING_JS
    )
    chat.restart.click(
        events.new_conversation, None, [turns, chat.conversation, chat.start, chat.actions]
    )
    chat.export.click(None, None, None, js=EXPORT_JS, queue=False)


def show_start(after, events: PageEvents, start: gr.HTML) -> None:
    """After an event, the start screen: at once what the library holds, then the suggested
    questions once they are found (each one asked first: twenty asks may take half a minute on a
    slow machine, and the counts should not wait for them)."""
    after.then(events.start_screen, None, start, show_progress="hidden").then(
        events.start_suggestions, None, start, show_progress="hidden"
    )


def wire_sources(events: PageEvents, sources: SourcesTab, start: gr.HTML, *, token_needed: bool) -> None:
    """Connect the sources tab's events: upload, delete and the refresh when the tab opens."""
    # Uploads, deletes and the refresh when the Sources tab opens run one at a time, in the
    # order they were asked for, so a refresh started before an upload never lands after it.
    # (Writes to the library are serialised by the service anyway.)
    in_order = {"concurrency_id": "sources", "concurrency_limit": 1}
    listing = [sources.table, sources.chosen]
    if token_needed:
        # Gradio's upload route needs the token before it stores anything (ui/guard.py), and
        # the browser's upload sends cookies, not headers: keep what the reader types in one.
        sources.token.change(None, [sources.token], None, js=TOKEN_COOKIE_JS, queue=False)
    uploaded = sources.files.upload(
        events.upload, [sources.files, sources.token], [sources.upload_results, *listing, sources.files], **in_order
    )
    show_start(uploaded, events, start)
    # Delete asks first; Yes deletes the document asked about (kept in the reader's session), even
    # if the dropdown changed meanwhile; Undo and Restore bring a file back.
    pending = gr.State(None)
    sources.delete.click(
        events.confirm_delete, [sources.chosen], [sources.delete_result, sources.confirm_row, pending], queue=False
    )
    sources.cancel.click(
        lambda: ("", gr.update(visible=False), None), None, [sources.delete_result, sources.confirm_row, pending],
        queue=False,
    )
    deleted = sources.confirm.click(
        events.delete, [pending, sources.token],
        [sources.delete_result, *listing, sources.confirm_row, sources.deleted], **in_order,
    )
    show_start(deleted, events, start)
    for shown in (sources.delete_result, sources.deleted):
        restored = shown.restore(
            events.restore_document, [sources.token], [sources.delete_result, *listing, sources.deleted], **in_order
        )
        show_start(restored, events, start)
    if token_needed:
        sources.token.blur(events.deleted_view, [sources.token], sources.deleted, show_progress="hidden")
    # The table is refreshed whenever its tab opens, as other readers may have changed the
    # library. Without show_progress="hidden" a table updated while its tab is hidden keeps
    # showing a spinner (Gradio 6.17).
    sources.tab.select(events.sources_view, None, listing, show_progress="hidden", **in_order)
    sources.tab.select(events.deleted_view, [sources.token], sources.deleted, show_progress="hidden")
    # Not in the "sources" group: the latest ingest shows while an upload is being indexed.
    seen = gr.State(None)
    for shown in (sources.tab.select, sources.ingest_timer.tick):
        shown(events.ingest_status, [seen], [sources.ingest_status, *listing, seen], show_progress="hidden",
              concurrency_id="ingest-status")


def wire_gaps(events: PageEvents, gaps: GapsTab, token: gr.Textbox) -> None:
    """Connect the gaps tab: listed when it opens (not as the page loads: a listing may ask questions again)."""
    gaps.tab.select(events.gaps_view, [token], gaps.listing)
    gaps.refresh.click(events.gaps_view, [token], gaps.listing)


def timer_switch(active: bool):
    """An event function that starts (or stops) a gr.Timer."""
    return lambda: gr.Timer(active=active)


def build_page(service: Sourcebook) -> gr.Blocks:
    """Build the chat page over `service`; per-reader conversation state lives in the session."""
    events = PageEvents(service)
    token_needed = service.settings.api_token is not None
    # Uploads the page never used (a dropped file with no event after it) are deleted within two hours.
    with gr.Blocks(title="sourcebook", analytics_enabled=False, delete_cache=(3600, 3600)) as page:
        # The conversation lives in the reader's browser, so it outlasts a reload and is theirs alone.
        turns = gr.BrowserState([], storage_key=CONVERSATION_KEY, secret=CONVERSATION_SECRET)
        gr.HTML(
            '<div class="sb-header"><h1>sourcebook</h1>'
            "<p>Answers from your team's documents, quoted word for word, with sources you can check.</p></div>",
            head=STYLE,
            js_on_load=None,
        )
        with gr.Tabs() as tabs:
            chat = chat_tab()
            sources = sources_tab(token_needed=token_needed)
            gaps = gaps_tab()
        # The very set Gradio's upload route adds to: only files in it are taken from an event.
        events.uploaded = page.upload_file_set
        wire_chat(events, chat, turns)
        wire_sources(events, sources, chat.start, token_needed=token_needed)
        wire_gaps(events, gaps, sources.token)
        # The latest ingest is read while the Sources tab is open, and not while another tab is.
        for tab in tabs.children:
            if isinstance(tab, gr.Tab):
                tab.select(timer_switch(tab is sources.tab), None, sources.ingest_timer, queue=False, show_progress="hidden")
        show_start(page.load(events.sources_view, None, [sources.table, sources.chosen], show_progress="hidden"),
                   events, chat.start)
        # A link to a passage opens it in the viewer as the page loads.
        page.load(events.open_link, None, chat.viewer)
        page.load(events.restore, [turns], [chat.conversation, chat.start, chat.actions])
    return page

"""A conversation as Markdown: what the page's export downloads and `sourcebook ask --markdown` prints."""

from __future__ import annotations

from collections.abc import Sequence

from retrieval.records import Answer, markdown_text, reference_markdown

TITLE = "# Questions to sourcebook"
# Between the title and each turn; the page joins its turns' Markdown the same way.
SEPARATOR = "\n\n"


def conversation_markdown(answers: Sequence[Answer], *, base: str = "") -> str:
    """Return the conversation as Markdown: each question a heading, then its answer and its quotes with citations.

    Links go to the quoted spans in the chat page at `base` ("https://host"; relative when empty).
    A question the documents do not answer gets the reply and the passages offered instead.
    """
    return SEPARATOR.join([TITLE, *(turn_markdown(answer, base=base) for answer in answers)]) + "\n"


def turn_markdown(answer: Answer, *, base: str = "") -> str:
    """Return one question and its answer as conversation_markdown writes it, links made at `base`."""
    parts = [f"## {markdown_text(' '.join(answer.question.split()))}"]
    if answer.corrections:
        parts.append(f"*{markdown_text(answer.reading())}*")
    if answer.answered:
        parts.append(markdown_text(answer.answer))
        parts.append("\n".join(f"{c.n}. {c.cite_markdown(base=base)}" for c in answer.citations))
    else:
        parts.append(f"*{markdown_text(answer.answer)}*")
        if answer.passages:
            see_also = "\n".join(f"- {reference_markdown(hit, base=base)}" for hit in answer.passages)
            parts.append(f"See also:\n\n{see_also}")
    return SEPARATOR.join(parts)

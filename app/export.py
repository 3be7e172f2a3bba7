"""A conversation as Markdown: what the page's export downloads and `sourcebook ask --markdown` prints."""

from __future__ import annotations

from collections.abc import Sequence

from retrieval.records import Answer, markdown_text, reference_markdown

TITLE = "# Questions to sourcebook"


def conversation_markdown(answers: Sequence[Answer], *, base: str = "") -> str:
    """Return the conversation as Markdown: each question a heading, then its answer and its quotes with citations.

    Links go to the quoted spans in the chat page at `base` ("https://host"; relative when empty).
    A question the documents do not answer gets the reply and the passages offered instead.
    """
    parts = [TITLE]
    for answer in answers:
        parts.append(f"## {markdown_text(' '.join(answer.question.split()))}")
        if answer.answered:
            parts.append(markdown_text(answer.answer))
            parts.append("\n".join(f"{c.n}. {c.cite_markdown(base=base)}" for c in answer.citations))
        else:
            parts.append(f"*{markdown_text(answer.answer)}*")
            if answer.passages:
                see_also = "\n".join(f"- {reference_markdown(hit, base=base)}" for hit in answer.passages)
                parts.append(f"See also:\n\n{see_also}")
    return "\n\n".join(parts) + "\n"

"""Which questions lean on the one before them."""

from __future__ import annotations

import pytest

from app.conversation import contextualise

EARLIER = ["How many daily users did the app have in the US in January?"]


@pytest.mark.parametrize("question", ["and what about March?", "What about March?", "March?", "How did it change?",
                                      "Also in Canada?", "Were they mostly students?"])
def test_follow_ups_are_searched_with_the_question_they_follow(question):
    assert contextualise(question, EARLIER) == f"{EARLIER[0]} {question}"


@pytest.mark.parametrize("question", ["How do I request time off on our team?", "Is there a form for expenses?",
                                      "Which cloud provider does the company use?"])
def test_questions_that_stand_alone_are_searched_alone(question):
    assert contextualise(question, EARLIER) == question


def test_without_history_nothing_changes():
    assert contextualise("and what about March?", []) == "and what about March?"
    assert contextualise("and what about March?", ["", "  "]) == "and what about March?"

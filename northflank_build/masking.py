"""Secrets hidden from text, by one rule, in time linear in the text whatever their number.

The rule, for the token and for each line of a build file or secret mount (stripped of the white
space around it):

- a line of 8 characters or more is hidden wherever it appears, even inside a longer word;
- a line of 3 to 7 characters is hidden where it stands alone: not directly after or before a
  letter, a digit or `_` (the token "abc" hides "abc" in "token abc." but not in "abcde");
- a line of 1 or 2 characters, one with no letter or digit (`{`, `---`), or one of the words
  true, false, yes, no, on, off, null and none is not a secret and is never hidden (the token
  is always hidden, whatever it is);
- each hidden value is hidden in the forms it can take when text quotes it: as is, escaped as in
  JSON (with and without \\u escapes), URL-encoded, and, from 8 characters on, base64-encoded.

Only values hidden wherever they appear are registered with the CI (::add-mask::), whose masking
reaches inside words.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from urllib.parse import quote

ANYWHERE = 8  # characters from which a secret is hidden wherever it appears
SHORTEST = 3  # characters below which a line of a file is too short to be a secret
COMMON_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "none"})
FEW = 64  # up to this many values, each is looked for on its own (str.find, in C)
MASK = "***"
WORD_CHAR = re.compile(r"\w")
WORD_START = re.compile(r"(?<!\w)")  # every position not directly after a word character


def kind(value: str, *, always: bool = False) -> str | None:
    """ "anywhere", "word" or None (not hidden), by the rule above; `always` for the token."""
    if len(value) >= ANYWHERE and (always or any(c.isalnum() for c in value)):
        return "anywhere"
    if always and value:
        return "word"
    if len(value) < SHORTEST or not any(c.isalnum() for c in value):
        return None
    return None if value.lower() in COMMON_WORDS else "word"


def forms(value: str, how: str) -> set[str]:
    """The value as text may quote it: as is, JSON-escaped, URL-encoded, base64."""
    found = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value.encode("utf-8", "surrogatepass"), safe=""),
    }
    if how == "anywhere":
        found.add(base64.b64encode(value.encode("utf-8", "surrogatepass")).decode("ascii"))
    return found


class Masker:
    """The secrets registered so far, and the text with every one of them hidden."""

    def __init__(self) -> None:
        self._anywhere: set[str] = set()
        self._words: set[str] = set()
        self._word_lengths: list[int] = []
        # First ANYWHERE characters -> (the lengths of the values that start so, longest first;
        # the values): a match is tried once per length, however many values share the start.
        self._index: dict[str, tuple[list[int], set[str]]] = {}

    def add(self, value: str, *, always: bool = False) -> list[str]:
        """Register a secret (the token with `always`): the value and each of its lines.

        Returns the lines the CI should mask too, those hidden wherever they appear.
        """
        register: list[str] = []
        lines = [value.strip(), *(line.strip() for line in value.splitlines())]
        for line in dict.fromkeys(lines):
            how = kind(line, always=always)
            if how is None:
                continue
            if how == "anywhere" and line not in self._anywhere:
                register.append(line)
            for form in forms(line, how):
                self._add_form(form, how)
        return register

    def _add_form(self, form: str, how: str) -> None:
        if how == "anywhere" or len(form) >= ANYWHERE:
            if form not in self._anywhere:
                self._anywhere.add(form)
                lengths, values = self._index.setdefault(form[:ANYWHERE], ([], set()))
                values.add(form)
                if len(form) not in lengths:
                    lengths.append(len(form))
                    lengths.sort(reverse=True)
        elif form not in self._words:
            self._words.add(form)
            if len(form) not in self._word_lengths:
                self._word_lengths = sorted([*self._word_lengths, len(form)], reverse=True)

    def hide(self, text: str) -> str:
        """The text with every registered secret replaced by ***."""
        if not text or not (self._anywhere or self._words):
            return text
        spans = sorted([*self._spans_anywhere(text), *self._spans_words(text)])
        if not spans:
            return text
        pieces, at = [], 0
        for start, end in _merged(spans):
            pieces += [text[at:start], MASK]
            at = end
        pieces.append(text[at:])
        return "".join(pieces)

    def _spans_anywhere(self, text: str) -> Iterator[tuple[int, int]]:
        if len(self._anywhere) <= FEW:
            for value in self._anywhere:
                start = text.find(value)
                while start >= 0:
                    yield start, start + len(value)
                    start = text.find(value, start + 1)
            return
        index = self._index
        for start in range(len(text) - ANYWHERE + 1):
            bucket = index.get(text[start : start + ANYWHERE])
            if bucket is None:
                continue
            lengths, values = bucket
            for length in lengths:  # longest first: the longest match covers the others
                if text[start : start + length] in values:
                    yield start, start + length
                    break

    def _spans_words(self, text: str) -> Iterator[tuple[int, int]]:
        if not self._words:
            return
        words, lengths, size = self._words, self._word_lengths, len(text)
        for boundary in WORD_START.finditer(text):
            start = boundary.start()
            for length in lengths:
                end = start + length
                if end <= size and text[start:end] in words and not WORD_CHAR.match(text, end):
                    yield start, end
                    break


def _merged(spans: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Sorted spans, overlapping ones joined."""
    start, end = spans[0]
    for next_start, next_end in spans[1:]:
        if next_start > end:
            yield start, end
            start, end = next_start, next_end
        else:
            end = max(end, next_end)
    yield start, end

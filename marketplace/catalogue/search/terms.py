"""Text as search terms (folded, stemmed) and search text as groups of words: the same on both
sides of the search (``index`` writes terms, ``queries`` looks them up) and on both databases."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from marketplace.catalogue.stemmer import stem

MAX_QUERY_CHARS = 200  # longer search text is cut here before it is split into terms
MAX_TERMS = 12
MAX_TERM_CHARS = 60  # longer "words" are not words; neither side indexes them
SORT_KEY_MAX = 120

# A run of letters and digits no longer than MAX_TERM_CHARS (longer runs are not words).
_WORD = re.compile(rf"(?<![a-z0-9])[a-z0-9]{{1,{MAX_TERM_CHARS}}}(?![a-z0-9])")
# Words too common to tell services apart: left out of a search (and said so on the page). "and"
# is what a search does anyway and "or" joins the words either side of it (see ``parse_text``);
# neither is ever matched as a word.
STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "into",
        "is",
        "of",
        "on",
        "or",
        "the",
        "to",
        "with",
    }
)


@functools.lru_cache(maxsize=200_000)  # a catalogue's vocabulary: each word is stemmed once
def _stem(word: str) -> str:
    """A word's stem (Porter2), the same on both sides of the search and on both databases."""
    return stem(word)


def _fold(text: str) -> str:
    """Lower case without accents."""
    folded = text.casefold()
    if not folded.isascii():
        folded = unicodedata.normalize("NFKD", folded)
        folded = "".join(c for c in folded if not unicodedata.combining(c))
    return folded


def terms(text: str | None) -> list[str]:
    """Text as plain search terms: folded to lower case without accents, letters and digits,
    each reduced to its stem."""
    if not text:
        return []
    return list(map(_stem, _WORD.findall(_fold(text))))


@dataclass(frozen=True)
class TextQuery:
    """What search text asks for: every group must match, and a group matches when any of its
    words does ("housing women or men": housing, and women or men).

    Each word is kept as typed (folded) for the page, with its stem for the index.
    """

    groups: tuple[tuple[tuple[str, str], ...], ...] = ()  # ((stem, word as typed), ...)
    ignored: tuple[str, ...] = ()  # common words left out, as typed

    @property
    def terms(self) -> list[str]:
        """The distinct stems, in order."""
        return list(dict.fromkeys(term for group in self.groups for term, _ in group))

    def fts5(self) -> str:
        """The FTS5 query: each stem quoted (stems are [a-z0-9]+), so no input is syntax."""
        return " AND ".join(
            f'"{group[0][0]}"'
            if len(group) == 1
            else "(" + " OR ".join(f'"{term}"' for term, _ in group) + ")"
            for group in self.groups
        )

    def tsquery(self) -> str:
        """The PostgreSQL tsquery text (for ``to_tsquery('simple', …)``): the same logic."""
        return " & ".join(
            group[0][0] if len(group) == 1 else "(" + " | ".join(term for term, _ in group) + ")"
            for group in self.groups
        )


def parse_text(text: str | None) -> TextQuery:
    """Search text as groups of words: all groups must match (AND is the default, and the word
    "and" only separates), "or" between two words makes them one group that either matches, and
    common words are left out. At most MAX_TERMS words; the text is cut to MAX_QUERY_CHARS."""
    groups: list[list[tuple[str, str]]] = []
    ignored: list[str] = []
    joining = False  # the last word seen was "or" after a word
    count = 0
    for word in _WORD.findall(_fold((text or "")[:MAX_QUERY_CHARS])):
        if word == "or":
            joining = bool(groups)
            continue
        if word == "and":
            joining = False
            continue
        if word in STOP_WORDS:
            if word not in ignored:
                ignored.append(word)
            continue
        term = _stem(word)
        if not joining:
            groups.append([])
        if all(term != known for known, _ in groups[-1]):
            groups[-1].append((term, word))
        joining = False
        count += 1
        if count >= MAX_TERMS:
            break
    distinct: dict[frozenset[str], tuple[tuple[str, str], ...]] = {}
    for group in groups:  # "housing housing": one group
        distinct.setdefault(frozenset(term for term, _ in group), tuple(group))
    return TextQuery(tuple(distinct.values()), tuple(ignored))


def query_terms(text: str | None) -> list[str]:
    """The distinct stems a search for this text looks for, in order."""
    return parse_text(text).terms


def sort_key(text: str) -> str:
    """The case-insensitive key names are sorted by, the same on both databases."""
    return unicodedata.normalize("NFKD", text.casefold())[:SORT_KEY_MAX]

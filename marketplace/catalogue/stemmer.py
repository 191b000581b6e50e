"""English stemming for catalogue search: the Porter2 ("Snowball English") algorithm.

A word and its forms reduce to one stem ("mentor", "mentors", "mentoring" → "mentor"; "house",
"housing" → "hous"), so a search finds the forms of the words a person types. The app stems the
indexed text and the search text with this one function, so SQLite and PostgreSQL index and match
exactly the same stems (neither database's own stemmer is used: FTS5 has only the older Porter
algorithm, and the two would disagree).

Written from the algorithm's published definition (snowballstem.org, "The English (Porter2)
stemming algorithm"), for lower-case ASCII words of letters and digits, which is what
``search.terms`` hands it. Changing it changes the stems in the index: run
`flask catalogue reindex` after any change.
"""

from __future__ import annotations

_VOWELS = frozenset("aeiouy")
_DOUBLES = ("bb", "dd", "ff", "gg", "mm", "nn", "pp", "rr", "tt")
_LI_ENDINGS = frozenset("cdeghkmnrt")

# Words the algorithm leaves alone or stems by hand (its own list).
_EXCEPTIONS = {
    "skis": "ski",
    "skies": "sky",
    "dying": "die",
    "lying": "lie",
    "tying": "tie",
    "idly": "idl",
    "gently": "gentl",
    "ugly": "ugli",
    "early": "earli",
    "only": "onli",
    "singly": "singl",
    "sky": "sky",
    "news": "news",
    "howe": "howe",
    "atlas": "atlas",
    "cosmos": "cosmos",
    "bias": "bias",
    "andes": "andes",
}
_AFTER_STEP_1A = frozenset(
    {"inning", "outing", "canning", "herring", "earring", "proceed", "exceed", "succeed"}
)
# Irregular plurals the algorithm cannot know and the catalogue's buyers type ("services for
# women" must find "a woman's refuge").
IRREGULAR = {"women": "woman", "men": "man", "children": "child", "people": "person"}

# Longest first: each step applies the longest suffix that ends the word, or nothing.
_STEP_2 = (
    ("ization", "ize"),
    ("ational", "ate"),
    ("fulness", "ful"),
    ("ousness", "ous"),
    ("iveness", "ive"),
    ("tional", "tion"),
    ("biliti", "ble"),
    ("lessli", "less"),
    ("entli", "ent"),
    ("ation", "ate"),
    ("alism", "al"),
    ("aliti", "al"),
    ("ousli", "ous"),
    ("iviti", "ive"),
    ("fulli", "ful"),
    ("enci", "ence"),
    ("anci", "ance"),
    ("abli", "able"),
    ("izer", "ize"),
    ("ator", "ate"),
    ("alli", "al"),
    ("bli", "ble"),
    ("ogi", "og"),
    ("li", ""),
)
_STEP_3 = (
    ("ational", "ate"),
    ("tional", "tion"),
    ("alize", "al"),
    ("icate", "ic"),
    ("iciti", "ic"),
    ("ative", ""),
    ("ical", "ic"),
    ("ness", ""),
    ("ful", ""),
)
_STEP_4 = (
    "ement",
    "ance",
    "ence",
    "able",
    "ible",
    "ment",
    "ant",
    "ent",
    "ism",
    "ate",
    "iti",
    "ous",
    "ive",
    "ize",
    "ion",
    "al",
    "er",
    "ic",
)


def _region_after(word: str, start: int) -> int:
    """Where the region after the first non-vowel following a vowel (from ``start``) begins."""
    for i in range(start + 1, len(word)):
        if word[i] not in _VOWELS and word[i - 1] in _VOWELS:
            return i + 1
    return len(word)


def _ends_in_short_syllable(word: str) -> bool:
    if len(word) == 2:
        return word[0] in _VOWELS and word[1] not in _VOWELS
    return (
        len(word) > 2
        and word[-3] not in _VOWELS
        and word[-2] in _VOWELS
        and word[-1] not in _VOWELS
        and word[-1] not in "wxY"
    )


def _has_vowel(text: str) -> bool:
    return any(c in _VOWELS for c in text)


def stem(word: str) -> str:
    """The Porter2 stem of a lower-case word (irregular plurals first made singular)."""
    word = IRREGULAR.get(word, word)
    if len(word) <= 2 or not word.isalpha():
        return word
    if word in _EXCEPTIONS:
        return _EXCEPTIONS[word]
    # A y at the start or after a vowel is a consonant: marked Y until the end.
    chars = list(word)
    if chars[0] == "y":
        chars[0] = "Y"
    for i in range(1, len(chars)):
        if chars[i] == "y" and chars[i - 1] in _VOWELS:
            chars[i] = "Y"
    w = "".join(chars)
    r1 = next(
        (len(p) for p in ("gener", "commun", "arsen") if w.startswith(p)), _region_after(w, 0)
    )
    r2 = _region_after(w, r1)

    # Step 1a: plurals.
    if w.endswith("sses"):
        w = w[:-2]
    elif w.endswith(("ied", "ies")):
        w = w[:-2] if len(w) > 4 else w[:-1]
    elif w.endswith(("us", "ss")):
        pass
    elif w.endswith("s") and _has_vowel(w[:-2]):
        w = w[:-1]
    if w in _AFTER_STEP_1A:
        return w

    # Step 1b: -eed, -ed, -ing.
    if w.endswith("eedly"):
        if len(w) - 5 >= r1:
            w = w[:-3]
    elif w.endswith("eed"):
        if len(w) - 3 >= r1:
            w = w[:-1]
    else:
        for suffix in ("ingly", "edly", "ing", "ed"):
            if w.endswith(suffix):
                rest = w[: -len(suffix)]
                if _has_vowel(rest):
                    w = rest
                    if w.endswith(("at", "bl", "iz")):
                        w += "e"
                    elif w.endswith(_DOUBLES):
                        w = w[:-1]
                    elif r1 >= len(w) and _ends_in_short_syllable(w):
                        w += "e"
                break

    # Step 1c: a final y after a consonant (not the first letter) becomes i.
    if len(w) > 2 and w[-1] in "yY" and w[-2] not in _VOWELS:
        w = w[:-1] + "i"

    # Steps 2 and 3: derivational suffixes in R1.
    for suffix, replacement in _STEP_2:
        if w.endswith(suffix):
            start = len(w) - len(suffix)
            if start >= r1 and (
                (suffix != "ogi" or w[start - 1] == "l")
                and (suffix != "li" or w[start - 1] in _LI_ENDINGS)
            ):
                w = w[:start] + replacement
            break
    for suffix, replacement in _STEP_3:
        if w.endswith(suffix):
            start = len(w) - len(suffix)
            if start >= r1 and (suffix != "ative" or start >= r2):
                w = w[:start] + replacement
            break

    # Step 4: suffixes in R2.
    for suffix in _STEP_4:
        if w.endswith(suffix):
            start = len(w) - len(suffix)
            if start >= r2 and (suffix != "ion" or w[start - 1] in "st"):
                w = w[:start]
            break

    # Step 5: a final e or a double l.
    if w.endswith("e"):
        if len(w) - 1 >= r2 or (len(w) - 1 >= r1 and not _ends_in_short_syllable(w[:-1])):
            w = w[:-1]
    elif w.endswith("l") and len(w) - 1 >= r2 and w[-2] == "l":
        w = w[:-1]
    return w.replace("Y", "y")

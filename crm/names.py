"""Company names and web addresses in the form used to recognise the same company twice.

Two spellings of one company ("Golden Health Co., Ltd." and "GOLDEN HEALTH LIMITED") share a
name key; two web addresses of one site ("https://www.acme.com/about" and "acme.com") share a
domain. Deal registrations are matched to accounts by these keys (docs: README, "Deal
registration").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from itertools import islice
from urllib.parse import urlsplit

NAME_KEY_MAX_LENGTH = 255

# Legal forms dropped from the end of a name: they say how a company is incorporated, not which
# company it is. Only trailing words go, so "Co-operative Bank" keeps its "co".
LEGAL_FORMS = frozenset(
    {
        "ab",
        "ag",
        "as",
        "bhd",
        "bv",
        "co",
        "company",
        "corp",
        "corporation",
        "gmbh",
        "inc",
        "incorporated",
        "kg",
        "kk",
        "limited",
        "llc",
        "llp",
        "lp",
        "ltd",
        "nv",
        "oy",
        "plc",
        "pte",
        "pty",
        "sa",
        "sarl",
        "sas",
        "sdn",
        "spa",
        "srl",
    }
)
# The same for names written in Chinese or Japanese, where no space separates the legal form;
# longest first.
CJK_LEGAL_FORMS = (
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "株式会社",
    "集团公司",
    "公司",
)
_SEPARATORS = re.compile(r"[\W_]+")
# ASCII bytes folded: letters to lower case, digits kept, everything else (what
# `_SEPARATORS` matches) to a space; LEGAL_FORMS as bytes.
_ASCII_FOLD = bytes(ord(chr(c).lower()) if chr(c).isalnum() else 32 for c in range(256))
_ASCII_LEGAL_FORMS = frozenset(form.encode("ascii") for form in LEGAL_FORMS)
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")


def company_name_key(name: str) -> str:
    """`name` folded for comparison: Unicode-normalised, case-folded, punctuation removed, and
    trailing legal forms ("Ltd", "GmbH & Co. KG", "有限公司") and a leading "the" dropped.

    A name made only of such words keeps them, so no company gets an empty key; an empty or
    blank name gives "".
    """
    if name.isascii():
        # The market import folds a million names: plain ASCII (most of them) takes a road of
        # byte tables, three times faster, with the same result as the general one below.
        ascii_words = name.encode("ascii").translate(_ASCII_FOLD).split()
        ascii_kept = list(ascii_words)
        while ascii_kept and ascii_kept[-1] in _ASCII_LEGAL_FORMS:
            ascii_kept.pop()
        if ascii_kept and ascii_kept[0] == b"the" and len(ascii_kept) > 1:
            ascii_kept.pop(0)
        return b" ".join(ascii_kept or ascii_words).decode("ascii")[:NAME_KEY_MAX_LENGTH]
    text = unicodedata.normalize("NFKC", name).casefold().strip()
    # Longest forms first, one of them at most: "有限公司" alone stays a name.
    for form in CJK_LEGAL_FORMS:
        if text.endswith(form):
            if len(text) > len(form):
                text = text[: -len(form)].rstrip()
            break
    words = [word for word in _SEPARATORS.split(text) if word]
    kept = list(words)
    while kept and kept[-1] in LEGAL_FORMS:
        kept.pop()
    if kept and kept[0] == "the" and len(kept) > 1:
        kept.pop(0)
    return " ".join(kept or words)[:NAME_KEY_MAX_LENGTH]


# As `_ASCII_FOLD`, keeping the line breaks that separate the names of a batch.
_ASCII_FOLD_LINES = _ASCII_FOLD[:10] + b"\n" + _ASCII_FOLD[11:]
_SPACES = re.compile("  +")
_LINE_EDGES = re.compile("^ | $", re.MULTILINE)
# A folded ASCII key ending in a legal form, which `company_name_key` drops.
_LEGAL_ENDING = re.compile(" (?:" + "|".join(sorted(LEGAL_FORMS)) + ")$", re.MULTILINE)


def company_name_keys(names: Sequence[str]) -> list[str]:
    """`company_name_key` of each of `names`, the same values, faster for many plain ASCII
    names (the market import folds a million): they are folded as one text, and only the
    keys that start with "the" or end in a legal form are made one at a time."""
    joined = "\n".join(names)
    if not joined.isascii() or joined.count("\n") != len(names) - 1:
        return list(map(company_name_key, names))
    folded = joined.encode("ascii").translate(_ASCII_FOLD_LINES).decode("ascii")
    if "  " in folded:
        folded = _SPACES.sub(" ", folded)
    if " \n" in folded or "\n " in folded or folded.startswith(" ") or folded.endswith(" "):
        folded = _LINE_EDGES.sub("", folded)
    keys = folded.split("\n")
    if max(map(len, keys), default=0) > NAME_KEY_MAX_LENGTH:
        return list(map(company_name_key, names))
    # Where a key to make one at a time starts or ends, in order; its line is the line
    # breaks before it.
    most = len(names) // 10  # beyond that, one at a time is about as fast
    places = [match.start() for match in islice(_LEGAL_ENDING.finditer(folded), most + 1)]
    if folded.startswith("the "):
        places.append(0)
    place = folded.find("\nthe ")
    while place >= 0 and len(places) <= most:
        places.append(place + 1)
        place = folded.find("\nthe ", place + 1)
    if len(places) > most:
        return list(map(company_name_key, names))
    line = last = 0
    for place in sorted(places):
        line += folded.count("\n", last, place)
        last = place
        keys[line] = company_name_key(names[line])
    return keys


def website_domain(website: str) -> str:
    """The host name of a web address, lower case and without "www.": "acme.com" for
    "https://www.Acme.com/about" or "acme.com". "" for an empty value or one that names no
    host (no dot, spaces, an IP address or other characters a domain cannot hold)."""
    text = website.strip().lower()
    if not text:
        return ""
    if "://" not in text:
        text = "//" + text
    try:
        host = urlsplit(text).hostname or ""
    except ValueError:
        return ""
    host = host.rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return ""
    if len(host) > 253 or not _HOST.match(host) or host.replace(".", "").isdigit():
        return ""
    return host

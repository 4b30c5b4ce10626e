"""Company names and web addresses in the form used to recognise the same company twice.

Two spellings of one company ("Golden Health Co., Ltd." and "GOLDEN HEALTH LIMITED") share a
name key; two web addresses of one site ("https://www.acme.com/about" and "acme.com") share a
domain. Deal registrations are matched to accounts by these keys (docs: README, "Deal
registration").
"""

from __future__ import annotations

import re
import unicodedata
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

"""Names of administrative divisions by their GB/T 2260 code (Hubei's prefectures and Wuhan's districts).

Used where a district row has no name of its own in a language: the overview names a city that is only
implied by its districts' codes (``420103`` → city ``420100`` 武汉市), and the English switch of the
viewer needs English names that the ingested layers rarely carry.
"""

from __future__ import annotations

import csv
import re
from functools import cache
from pathlib import Path

DIVISIONS_CSV = Path(__file__).with_name("divisions.csv")
"""The code list: ``code,zh,en`` rows (UTF-8), data beside the code that reads it."""


@cache
def divisions() -> dict[str, tuple[str, str]]:
    """GB/T 2260 code → (Chinese, English) name, from :data:`DIVISIONS_CSV`."""
    with DIVISIONS_CSV.open(encoding="utf-8", newline="") as f:
        return {row["code"]: (row["zh"], row["en"]) for row in csv.DictReader(f)}


_COUNTY = re.compile(r"^\d{2}(?!90)\d{2}(?!00)\d{2}$")
"""A county-level code under a prefecture (``xx90xx`` are county-level units directly under the province)."""


def city_code_of(code: str, level: str | None = None, parent_code: str | None = None) -> str:
    """The prefecture-level code a division belongs to: itself for a city, else its parent or its code's prefix.

    >>> city_code_of("420103")
    '420100'
    >>> city_code_of("420100")
    '420100'
    >>> city_code_of("429004")  # a county-level city directly under the province
    '429004'
    >>> city_code_of("x-7", parent_code="420100")
    '420100'
    """
    if level in ("city", "prefecture"):
        return code
    if parent_code:
        return parent_code
    return code[:4] + "00" if _COUNTY.match(code) else code


def division_name(code: str, zh: str | None = None) -> tuple[str, str]:
    """(Chinese, English) name of a division: the known names of ``code``, else ``zh`` (or the code) twice."""
    known = divisions().get(code)
    if known is not None:
        return (zh or known[0], known[1])
    name = zh or code
    return (name, name)

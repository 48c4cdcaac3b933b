"""Names of administrative divisions by their GB/T 2260 code (Hubei's prefectures and Wuhan's districts).

Used where a district row has no name of its own in a language: the overview names a city that is only
implied by its districts' codes (``420103`` → city ``420100`` 武汉市), and the English switch of the
viewer needs English names that the ingested layers rarely carry.
"""

from __future__ import annotations

import re

DIVISIONS: dict[str, tuple[str, str]] = {
    "420000": ("湖北省", "Hubei"),
    "420100": ("武汉市", "Wuhan"),
    "420200": ("黄石市", "Huangshi"),
    "420300": ("十堰市", "Shiyan"),
    "420500": ("宜昌市", "Yichang"),
    "420600": ("襄阳市", "Xiangyang"),
    "420700": ("鄂州市", "Ezhou"),
    "420800": ("荆门市", "Jingmen"),
    "420900": ("孝感市", "Xiaogan"),
    "421000": ("荆州市", "Jingzhou"),
    "421100": ("黄冈市", "Huanggang"),
    "421200": ("咸宁市", "Xianning"),
    "421300": ("随州市", "Suizhou"),
    "422800": ("恩施土家族苗族自治州", "Enshi"),
    "429004": ("仙桃市", "Xiantao"),
    "429005": ("潜江市", "Qianjiang"),
    "429006": ("天门市", "Tianmen"),
    "429021": ("神农架林区", "Shennongjia"),
    "420102": ("江岸区", "Jiang'an District"),
    "420103": ("江汉区", "Jianghan District"),
    "420104": ("硚口区", "Qiaokou District"),
    "420105": ("汉阳区", "Hanyang District"),
    "420106": ("武昌区", "Wuchang District"),
    "420107": ("青山区", "Qingshan District"),
    "420111": ("洪山区", "Hongshan District"),
    "420112": ("东西湖区", "Dongxihu District"),
    "420113": ("汉南区", "Hannan District"),
    "420114": ("蔡甸区", "Caidian District"),
    "420115": ("江夏区", "Jiangxia District"),
    "420116": ("黄陂区", "Huangpi District"),
    "420117": ("新洲区", "Xinzhou District"),
}
"""GB/T 2260 code → (Chinese, English) name."""

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
    known = DIVISIONS.get(code)
    if known is not None:
        return (zh or known[0], known[1])
    name = zh or code
    return (name, name)

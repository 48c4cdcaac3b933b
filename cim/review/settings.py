"""Review settings: the rule tables a deployment may change (environment prefix ``CIM_REVIEW_``, or a TOML
file given as ``CIM_REVIEW_CONFIG``). Defaults follow the Chinese national standards named per field;
``docs/review.md`` prints every table."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from cim.errors import ConfigError

MIB = 1024 * 1024

HUBEI_BOUNDS = (108.3, 29.0, 116.1, 33.3)
"""Bounding box of Hubei province (west, south, east, north; CGCS2000 degrees): the fallback province boundary."""


_ZONES_ZH = dict(zip(("I", "II", "III", "IV", "V", "VI", "VII"), "ⅠⅡⅢⅣⅤⅥⅦ", strict=True))
_DAYS = {"01-20": ("大寒日", "Major Cold day"), "12-21": ("冬至日", "Winter Solstice")}
_CITY_SIZES = {
    "large": ("，城区常住人口≥50万", ", ≥ 500,000 people"),
    "small": ("，城区常住人口<50万", ", < 500,000 people"),
}


class SunlightStandard(BaseModel):
    """One row of GB 50180-2018 table 4.0.9 (住宅建筑日照标准): the day, the hours, the time band."""

    zones: tuple[str, ...] = Field(description="Building climate zones of the row (GB 50178), Roman numerals.")
    city_size: Literal["large", "small"] | None = Field(
        description="Urban resident population: large ≥ 500,000, small < 500,000; None when the row covers both."
    )
    day: str = Field(description="Month-day of the standard day: 01-20 大寒日, 12-21 冬至日.")
    min_hours: float = Field(description="Required sunlight hours at the ground-floor window sill.")
    start: float = Field(description="Start of the effective sunlight band, hours of true solar time.")
    end: float = Field(description="End of the effective sunlight band, hours of true solar time.")

    @property
    def key(self) -> str:
        """The row's name in :data:`SUNLIGHT_STANDARDS` (``I-II-III-VII-large``, ``V-VI``)."""
        return "-".join((*self.zones, self.city_size) if self.city_size else self.zones)

    @property
    def label_zh(self) -> str:
        """The row as the standard writes it (``Ⅴ、Ⅵ气候区：冬至日≥1h（9–15时）``)."""
        people = _CITY_SIZES[self.city_size][0] if self.city_size else ""
        zones = "、".join(_ZONES_ZH[zone] for zone in self.zones)
        band = f"{self.start:g}–{self.end:g}时"
        return f"{zones}气候区{people}：{_DAYS[self.day][0]}≥{self.min_hours:g}h（{band}）"

    @property
    def label_en(self) -> str:
        """The row in English (``Climate zones V, VI: Winter Solstice ≥ 1 h (09–15 h)``)."""
        people = _CITY_SIZES[self.city_size][1] if self.city_size else ""
        zones = f"zone{'s' if len(self.zones) > 1 else ''} {', '.join(self.zones)}"
        band = f"{self.start:02.0f}–{self.end:02.0f} h"
        return f"Climate {zones}{people}: {_DAYS[self.day][1]} ≥ {self.min_hours:g} h ({band})"


SUNLIGHT_STANDARDS: dict[str, SunlightStandard] = {
    row.key: row
    for row in (
        SunlightStandard(zones=("I", "II", "III", "VII"), city_size="large", day="01-20", min_hours=2, start=8, end=16),
        SunlightStandard(zones=("I", "II", "III", "VII"), city_size="small", day="01-20", min_hours=3, start=8, end=16),
        SunlightStandard(zones=("IV",), city_size="large", day="01-20", min_hours=3, start=8, end=16),
        SunlightStandard(zones=("IV",), city_size="small", day="12-21", min_hours=1, start=9, end=15),
        SunlightStandard(zones=("V", "VI"), city_size=None, day="12-21", min_hours=1, start=9, end=15),
    )
}
"""GB 50180-2018 table 4.0.9, one row per climate zone / city size."""

FIRE_SPACING_M: dict[str, dict[str, float]] = {
    "high": {"high": 13.0, "1-2": 9.0, "3": 11.0, "4": 14.0},
    "1-2": {"high": 9.0, "1-2": 6.0, "3": 7.0, "4": 9.0},
    "3": {"high": 11.0, "1-2": 7.0, "3": 8.0, "4": 10.0},
    "4": {"high": 14.0, "1-2": 9.0, "3": 10.0, "4": 12.0},
}
"""GB 50016-2014 (2018) table 5.2.2: fire separation between civil buildings (m) by category: ``high``
(high-rise), ``1-2``/``3``/``4`` (podiums and other civil buildings of fire-resistance grade 一二级/三级/四级)."""

PIPE_CLEARANCE_M: dict[str, float] = {
    "pipe_water": 1.0,
    "pipe_water_large": 3.0,
    "pipe_drainage": 2.5,
    "pipe_sewer": 2.5,
    "pipe_storm": 2.5,
    "pipe_reclaimed": 1.0,
    "pipe_gas_low": 0.7,
    "pipe_gas_medium_b": 1.0,
    "pipe_gas_medium_a": 1.5,
    "pipe_gas_sub_high_b": 5.0,
    "pipe_gas_sub_high_a": 13.5,
    "pipe_heat": 3.0,
    "pipe_power": 0.6,
    "pipe_telecom": 1.0,
    "pipe_telecom_duct": 1.5,
    "utility_trench": 0.5,
}
"""GB 50289-2016 table 4.1.9: least horizontal clearance (m) from a pipe's outer wall to a building.
``pipe_water`` is d ≤ 200 mm, ``pipe_water_large`` d > 200 mm; gas by pressure class (低压, 中压B, 中压A,
次高压B, 次高压A)."""


class ReviewSettings(BaseSettings):
    """Limits and rule tables of the BIM pre-review (environment prefix ``CIM_REVIEW_``)."""

    model_config = SettingsConfigDict(env_prefix="CIM_REVIEW_", extra="ignore")

    upload_limit_bytes: int = Field(default=256 * MIB, gt=0, description="Largest accepted model file, bytes.")
    ifczip_max_bytes: int = Field(default=1024 * MIB, gt=0, description="Largest unpacked .ifc inside an ifczip.")
    ifczip_max_ratio: float = Field(default=100.0, gt=1, description="Largest unpacked/packed size ratio of an ifczip.")
    province_code: str | None = Field(default=None, description="district.code of the province boundary, if stored.")
    province_bounds: tuple[float, float, float, float] = Field(
        default=HUBEI_BOUNDS, description="Province boundary used when no province row is stored (W, S, E, N degrees)."
    )
    sunlight_standard: str = Field(default="I-II-III-VII-large", description="Row of GB 50180-2018 table 4.0.9.")
    sunlight_year: int = Field(default=2025, description="Year whose standard day is computed.")
    sunlight_step_minutes: float = Field(default=1.0, gt=0, description="Time step of the sun positions, minutes.")
    sunlight_sample_spacing_m: float = Field(default=3.0, gt=0, description="Window sample spacing along a façade.")
    sill_height_m: float = Field(default=0.9, ge=0, description="Ground-floor window sill above the building base.")
    sunlight_radius_m: float = Field(default=600.0, gt=0, description="Largest distance of neighbours examined.")
    residential_uses: tuple[str, ...] = Field(default=("residential", "mixed"), description="building.use values.")
    high_rise_m: float = Field(
        default=24.0, description="Non-residential buildings above this are high-rise (GB 50016)."
    )
    high_rise_residential_m: float = Field(default=27.0, description="Residential buildings above this are high-rise.")
    default_fire_grade: str = Field(default="1-2", description="Fire-resistance grade assumed when none is given.")
    fire_spacing_m: dict[str, dict[str, float]] = Field(default_factory=lambda: dict(FIRE_SPACING_M))
    pipe_clearance_m: dict[str, float] = Field(default_factory=lambda: dict(PIPE_CLEARANCE_M))
    footprint_overlap_m2: float = Field(default=0.5, ge=0, description="Overlap below this is drawing noise, m².")

    def sunlight(self) -> SunlightStandard:
        """The configured row of GB 50180-2018 table 4.0.9."""
        try:
            return SUNLIGHT_STANDARDS[self.sunlight_standard]
        except KeyError as exc:
            raise ConfigError(
                f"unknown sunlight standard {self.sunlight_standard!r}; choose one of {', '.join(SUNLIGHT_STANDARDS)}"
            ) from exc


def load_review_settings(path: Path | None = None) -> ReviewSettings:
    """Review settings from the environment, overridden by a TOML file (``[review]`` table) when given."""
    base = ReviewSettings()
    if path is None:
        return base
    try:
        table: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8")).get("review", {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read review settings {path}: {exc}") from exc
    return ReviewSettings(**{**base.model_dump(), **table})

"""One bbox parser and one tileset-name rule for the API, the command line and jobs."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from cim.cli.common import BBoxOption
from cim.values import BBox, check_tileset_name


def test_a_bbox_is_read_in_x_y_order_and_from_lat_lon_order() -> None:
    assert BBox.parse("114.2,30.5,114.4,30.7") == BBox(114.2, 30.5, 114.4, 30.7)
    assert BBox.parse("30.5,114.2,30.7,114.4", yx=True) == BBox(114.2, 30.5, 114.4, 30.7)
    assert BBox.parse([114.2, 30.5, 0, 114.4, 30.7, 50]) == BBox(114.2, 30.5, 114.4, 30.7)
    assert BBox.parse("500000,3300000,510000,3310000", degrees=False).east == 510000


@pytest.mark.parametrize(
    ("text", "options", "reason"),
    [
        ("1,2,3", {}, "four"),
        ("a,b,c,d", {}, "four numbers"),
        ("1,2,nan,4", {}, "finite"),
        ("200,10,210,20", {}, "−180…180"),
        ("10,20,11,19", {}, "north"),
        ("11,19,10,20", {"west_of_east": True}, "west < east"),
    ],
)
def test_a_bad_bbox_is_refused_with_the_reason(text: str, options: dict, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        BBox.parse(text, **options)


def test_the_shared_bbox_option_parses_to_a_bbox_and_refuses_bad_input_as_usage_error() -> None:
    app = typer.Typer()

    @app.command()
    def show(bbox: BBoxOption = None) -> None:
        typer.echo(repr(bbox))

    assert (
        "BBox(west=114.0, south=30.0, east=115.0, north=31.0)"
        in CliRunner().invoke(app, ["--bbox", "114,30,115,31"]).output
    )
    bad = CliRunner().invoke(app, ["--bbox", "115,30,114,31"])
    assert bad.exit_code == 2


def test_tileset_names_follow_one_rule() -> None:
    assert check_tileset_name("city-2026.v2") == "city-2026.v2"
    for bad in ("_hidden", ".hidden", "a/b", "x" * 65, ""):
        with pytest.raises(ValueError, match="tileset name"):
            check_tileset_name(bad)

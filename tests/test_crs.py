"""The unified CRS: parsing what users type, and transforms checked against PostGIS and EPSG examples."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import psycopg
import pytest
import shapely
from pyproj import CRS

from cim import crs
from cim.errors import CrsError

# Points across Hubei (lon, lat, normal height m): Enshi, Yichang, Wuhan, Huangmei.
HUBEI = np.array([[109.48, 30.27, 430.0], [111.29, 30.69, 60.0], [114.30, 30.59, 23.0], [115.94, 30.07, 18.0]])


@pytest.mark.parametrize(
    ("text", "epsg"),
    [
        ("EPSG:4547", 4547),
        ("4547", 4547),
        ("epsg:4490", 4490),
        ("http://www.opengis.net/def/crs/EPSG/0/4546", 4546),
        (CRS.from_epsg(4526).to_wkt(), 4526),
        ("+proj=tmerc +lat_0=0 +lon_0=114 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m +no_defs", None),
    ],
)
def test_user_typed_crs_forms_are_understood(text: str, epsg: int | None) -> None:
    parsed = crs.parse_crs(text)
    assert parsed.crs is not None
    assert parsed.epsg == epsg


def test_prj_file_of_a_zone_prefixed_gauss_kruger_grid_is_read(tmp_path: Path) -> None:
    prj = tmp_path / "buildings.prj"
    prj.write_text(CRS.from_epsg(4526).to_wkt("WKT1_ESRI"), encoding="utf-8")
    parsed = crs.parse_crs(str(prj))
    lon, lat = crs.to_cgcs2000([38_528_770.237], [3_386_666.251], parsed)
    assert lon[0] == pytest.approx(114.3, abs=1e-7)
    assert lat[0] == pytest.approx(30.6, abs=1e-7)


def test_unknown_crs_text_names_what_was_given_and_the_accepted_forms() -> None:
    with pytest.raises(CrsError) as err:
        crs.parse_crs("Wuhan 2000 grid")
    assert "Wuhan 2000 grid" in str(err.value)
    assert "EPSG:4547" in str(err.value) and "PROJ string" in str(err.value)


def test_gauss_kruger_zone_is_chosen_by_longitude_across_hubei() -> None:
    assert [crs.gk_zone_epsg(lon) for lon in (108.5, 109.6, 111.2, 112.6, 114.3, 116.0)] == [
        4545,
        4546,
        4546,
        4547,
        4547,
        4548,
    ]
    assert crs.gk_zone_prefixed_epsg(38) == 4526
    assert crs.zone_from_prefixed_easting(38_512_345.6) == 38
    assert crs.zone_from_prefixed_easting(512_345.6) is None
    with pytest.raises(CrsError):
        crs.gk_zone_number(10.0)


def _postgis_transform(url: str, points: np.ndarray, src: int, dst: int) -> np.ndarray:
    with psycopg.connect(url) as conn:
        rows = []
        for x, y, z in points:
            row = conn.execute(
                "SELECT ST_X(g), ST_Y(g), ST_Z(g) FROM ST_Transform(ST_SetSRID(ST_MakePoint(%s, %s, %s), %s), %s) g",
                (float(x), float(y), float(z), src, dst),
            ).fetchone()
            assert row is not None
            rows.append(row)
    return np.array(rows, dtype=np.float64)


def test_gauss_kruger_transforms_agree_with_postgis_to_a_tenth_of_a_millimetre(db_url: str) -> None:
    for lon, lat, h in HUBEI:
        epsg = crs.gk_zone_epsg(lon)
        x, y = crs.transform_xy([lon], [lat], crs.CGCS2000, epsg)
        expected = _postgis_transform(db_url, np.array([[lon, lat, h]]), 4490, epsg)[0]
        assert abs(x[0] - expected[0]) < 1e-4 and abs(y[0] - expected[1]) < 1e-4
        back_lon, back_lat = crs.to_cgcs2000(x, y, f"EPSG:{epsg}")
        assert abs(back_lon[0] - lon) < 1e-9 and abs(back_lat[0] - lat) < 1e-9


def test_geocentric_positions_agree_with_postgis_to_a_millimetre(db_url: str) -> None:
    ours = crs.geodetic_to_geocentric(HUBEI[:, 0], HUBEI[:, 1], HUBEI[:, 2])
    theirs = _postgis_transform(db_url, HUBEI, 4480, 4479)
    assert np.abs(ours - theirs).max() < 1e-3
    lon, _lat, h = crs.geocentric_to_geodetic(ours)
    assert np.abs(lon - HUBEI[:, 0]).max() < 1e-10
    assert np.abs(h - HUBEI[:, 2]).max() < 1e-6


def test_geocentric_conversion_matches_the_epsg_guidance_note_example() -> None:
    # IOGP Guidance Note 7-2, geographic/geocentric conversion example (WGS 84): 53°48'33.820"N,
    # 2°07'46.380"E, h = 73.0 m → X 3771793.968, Y 140253.342, Z 5124304.349. CGCS2000's ellipsoid
    # differs from WGS 84 by 1.6e-11 in flattening: far below a millimetre here.
    lat = 53 + 48 / 60 + 33.820 / 3600
    lon = 2 + 7 / 60 + 46.380 / 3600
    xyz = crs.geodetic_to_geocentric([lon], [lat], [73.0])[0]
    assert np.abs(xyz - np.array([3771793.968, 140253.342, 5124304.349])).max() < 1e-3


def test_transverse_mercator_matches_the_epsg_guidance_note_example() -> None:
    # IOGP Guidance Note 7-2, Transverse Mercator example: OSGB 1936 / British National Grid,
    # 50°30'N 0°30'E → E 577274.99, N 69740.50.
    e, n = crs.transform_xy([0.5], [50.5], "EPSG:4277", "EPSG:27700")
    assert e[0] == pytest.approx(577274.99, abs=0.01)
    assert n[0] == pytest.approx(69740.50, abs=0.01)


def test_normal_heights_become_ellipsoidal_with_the_deployment_height_anomaly() -> None:
    with_anomaly = crs.geodetic_to_geocentric([114.3], [30.6], [20.0], height_anomaly=-13.5)
    plain = crs.geodetic_to_geocentric([114.3], [30.6], [6.5])
    assert np.abs(with_anomaly - plain).max() < 1e-6
    assert crs.normal_height(crs.ellipsoidal_height([20.0], -13.5), -13.5)[0] == pytest.approx(20.0)


def test_four_parameter_helmert_local_grid_follows_its_documented_formula(tmp_path: Path) -> None:
    config = tmp_path / "local.toml"
    config.write_text(
        '[local_crs]\nname = "Wuhan local"\ntype = "helmert4"\nbase = "EPSG:4547"\n'
        "dx = 500123.4\ndy = 3380456.7\nrotation_arcsec = 36.0\nscale_ppm = 12.5\n",
        encoding="utf-8",
    )
    local = crs.parse_crs(str(config))
    x, y = np.array([1000.0, -2500.0]), np.array([2000.0, 800.0])
    theta = math.radians(36.0 / 3600)
    k = 1 + 12.5e-6
    gx = 500123.4 + k * (x * math.cos(theta) - y * math.sin(theta))
    gy = 3380456.7 + k * (x * math.sin(theta) + y * math.cos(theta))
    expected_lon, expected_lat = crs.to_cgcs2000(gx, gy, "EPSG:4547")
    lon, lat = crs.to_cgcs2000(x, y, local)
    assert np.abs(lon - expected_lon).max() < 1e-10
    assert np.abs(lat - expected_lat).max() < 1e-10


def test_seven_parameter_local_grid_agrees_with_the_equivalent_towgs84_definition() -> None:
    params = [-15.0, 150.0, 50.0, 0.5, -0.3, 1.2, 2.5]
    local = crs.local_crs_from_mapping(
        {"type": "transverse_mercator", "central_meridian": 114, "ellipsoid": "krass", "helmert7": params}
    )
    proj = (
        "+proj=tmerc +lat_0=0 +lon_0=114 +k=1 +x_0=500000 +y_0=0 +ellps=krass "
        f"+towgs84={','.join(str(p) for p in params)} +units=m +no_defs"
    )
    x, y = [512000.0, 488000.0], [3388000.0, 3350000.0]
    lon, lat = crs.to_cgcs2000(x, y, local)
    ref_lon, ref_lat = crs.transform_xy(x, y, proj, "EPSG:4326")
    # towgs84 targets WGS 84, which PROJ equates with CGCS2000 here: the same numbers must come out.
    assert np.abs(lon - ref_lon).max() < 1e-8 and np.abs(lat - ref_lat).max() < 1e-8


def test_local_crs_file_without_the_table_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[something]\nx = 1\n", encoding="utf-8")
    with pytest.raises(CrsError, match=r"\[local_crs\]"):
        crs.parse_crs(str(bad))
    with pytest.raises(CrsError, match="central_meridian"):
        crs.local_crs_from_mapping({"type": "transverse_mercator"})


def test_swapped_axes_are_refused_with_a_hint() -> None:
    source = crs.parse_crs("EPSG:4547")
    # Northing given as x and easting as y: lands far outside the zone.
    lon, lat = crs.to_cgcs2000([3_386_666.25], [528_770.24], source)
    with pytest.raises(CrsError, match="swapped"):
        crs.check_within_area_of_use(lon, lat, source)
    good_lon, good_lat = crs.to_cgcs2000([528_770.24], [3_386_666.25], source)
    crs.check_within_area_of_use(good_lon, good_lat, source)


def test_geometries_transform_with_heights_passing_through() -> None:
    poly = shapely.Polygon([(528_770, 3_386_666, 5), (528_800, 3_386_666, 5), (528_800, 3_386_700, 5)])
    out = crs.transform_geometry(poly, "EPSG:4547")
    coords = shapely.get_coordinates(out, include_z=True)
    assert coords[0, 0] == pytest.approx(114.3, abs=1e-5)
    assert np.all(coords[:, 2] == 5)


def test_east_north_up_frame_is_orthonormal_and_centred_on_the_point() -> None:
    m = crs.enu_to_ecef_matrix(114.3, 30.6, 25.0)
    rot = m[:3, :3]
    assert np.allclose(rot.T @ rot, np.eye(3), atol=1e-12)
    assert np.allclose(m[:3, 3], crs.geodetic_to_geocentric([114.3], [30.6], [25.0])[0])
    up = rot[:, 2]
    assert np.dot(up, m[:3, 3] / np.linalg.norm(m[:3, 3])) > 0.99


def test_ogc_crs_uris_round_trip() -> None:
    assert crs.epsg_from_uri(crs.crs_uri(4547)) == 4547
    assert crs.epsg_from_uri(crs.CRS84_URI) is None
    with pytest.raises(CrsError):
        crs.epsg_from_uri("urn:made:up")

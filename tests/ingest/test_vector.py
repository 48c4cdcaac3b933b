"""Vector ingest: every format, Chinese DBF encodings, CRS refusals, repairs, filters and transactions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyogrio
import pyogrio.raw
import pytest
import shapely
from sqlalchemy import text

from cim import crs as cimcrs
from cim.errors import CrsError, IngestError
from ingest.vector import ingest_vector
from tests.ingest.sql import rows

WUHAN = (114.30, 30.58)


def _gk_boxes(n: int, size: float = 20.0) -> np.ndarray:
    """n square footprints (EPSG:4547 metres) near Wuhan, 50 m apart."""
    x0, y0 = cimcrs.transform_xy([WUHAN[0]], [WUHAN[1]], 4490, 4547)
    xs = x0[0] + np.arange(n) * 50.0
    return shapely.box(xs, y0[0], xs + size, y0[0] + size)


def _write(
    path: Path,
    geoms: np.ndarray,
    fields: dict[str, list],
    *,
    crs: str | None = "EPSG:4547",
    driver: str | None = None,
    encoding: str | None = None,
    layer: str | None = None,
) -> Path:
    table = pa.table({**fields, "geometry": pa.array(list(shapely.to_wkb(geoms)), pa.binary())})
    pyogrio.raw.write_arrow(
        table,
        path,
        layer=layer,
        driver=driver,
        geometry_name="geometry",
        geometry_type="Unknown" if driver in {"GeoJSON", "CSV"} else None or _gtype(geoms),
        crs=crs,
        encoding=encoding,
    )
    return path


def _gtype(geoms: np.ndarray) -> str:
    kinds = {g.geom_type for g in geoms}
    return kinds.pop() if len(kinds) == 1 else "Unknown"


def _buildings(engine) -> list[dict]:
    with engine.connect() as conn:
        rows = (
            conn.execute(
                text(
                    "SELECT name, height, storeys, use, year_built, structure, safety_class, address, base_height, "
                    "attributes, ST_X(ST_Centroid(footprint)) lon, ST_Y(ST_Centroid(footprint)) lat, "
                    "GeometryType(footprint) gtype, ST_SRID(footprint) srid FROM building ORDER BY id"
                )
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


CHINESE = {
    "名称": ["汉街一号楼", "江汉路商场", "幸福里小区3栋"],
    "层数": [6, 3, 30],
    "高度": [None, 14.5, None],
    "用途": ["住宅", "商业", "商住混合"],
    "建成年代": ["1985年", "2003", "2015"],
    "结构": ["砖混", "框架", "剪力墙"],
    "房屋安全等级": ["C级", "B", "D级"],
    "地址": ["武汉市江汉区汉街1号", "江汉路100号", "解放大道8号"],
    "备注": ["老旧小区", None, "高层"],
}


def test_geopackage_buildings_get_heights_uses_and_chinese_attributes(engine, settings, tmp_path):
    path = _write(tmp_path / "b.gpkg", _gk_boxes(3), CHINESE, driver="GPKG", layer="buildings")
    report = ingest_vector(engine, path, settings, layer="buildings")
    assert (report.read, report.stored, report.repaired, report.skipped_features) == (3, 3, 0, 0)
    rows = _buildings(engine)
    assert [r["name"] for r in rows] == CHINESE["名称"]
    assert [r["height"] for r in rows] == [18.0, 14.5, 90.0]  # floors × 3 m unless a height is given
    assert [r["use"] for r in rows] == ["residential", "commercial", "mixed"]
    assert [r["year_built"] for r in rows] == [1985, 2003, 2015]
    assert [r["safety_class"] for r in rows] == ["C", "B", "D"]
    assert rows[0]["attributes"]["备注"] == "老旧小区"
    assert rows[0]["gtype"] == "MULTIPOLYGON" and rows[0]["srid"] == 4490
    assert rows[0]["lon"] == pytest.approx(WUHAN[0], abs=1e-3) and rows[0]["lat"] == pytest.approx(WUHAN[1], abs=1e-3)
    with engine.connect() as conn:
        ds = conn.execute(
            text("SELECT status, counts, crs_in FROM dataset WHERE id = :i"), {"i": report.dataset_id}
        ).one()
    assert ds.status == "loaded" and ds.counts["stored"] == 3 and ds.crs_in == "EPSG:4547"


@pytest.mark.parametrize(
    ("with_cpg", "encoding"), [(True, None), (False, None), (False, "GBK")], ids=["cpg", "detected", "option"]
)
def test_gbk_shapefile_attributes_arrive_as_chinese_text(engine, settings, tmp_path, with_cpg, encoding):
    path = _write(tmp_path / "楼.shp", _gk_boxes(3), CHINESE, driver="ESRI Shapefile", encoding="GBK")
    dbf = path.with_suffix(".dbf").read_bytes()
    assert "汉街".encode("gbk") in dbf  # really GBK on disk
    if not with_cpg:
        path.with_suffix(".cpg").unlink()
    report = ingest_vector(engine, path, settings, layer="buildings", encoding=encoding)
    assert report.stored == 3
    rows = _buildings(engine)
    assert [r["name"] for r in rows] == CHINESE["名称"]
    assert rows[2]["address"] == "解放大道8号" and rows[0]["structure"] == "砖混"
    assert [r["safety_class"] for r in rows] == ["C", "B", "D"]  # 房屋安全等级 truncated to 10 DBF bytes


def test_shapefile_without_prj_is_refused_and_accepted_with_crs(engine, settings, tmp_path):
    path = _write(tmp_path / "b.shp", _gk_boxes(2), {"NAME": ["a", "b"]}, driver="ESRI Shapefile")
    path.with_suffix(".prj").unlink()
    with pytest.raises(CrsError, match=r"no coordinate reference system.*--crs"):
        ingest_vector(engine, path, settings, layer="buildings")
    assert ingest_vector(engine, path, settings, layer="buildings", crs="EPSG:4547").stored == 2


def test_swapped_axes_are_refused_and_nothing_stored(engine, settings, tmp_path):
    boxes = _gk_boxes(2)
    swapped = shapely.transform(boxes, lambda c: c[:, ::-1])
    path = _write(tmp_path / "s.gpkg", swapped, {"NAME": ["a", "b"]}, driver="GPKG")
    with pytest.raises(CrsError, match="swapped"):
        ingest_vector(engine, path, settings, layer="buildings")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM building")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM dataset")).scalar() == 0


def test_zone_prefixed_eastings_are_recognised(engine, settings, tmp_path):
    boxes = shapely.transform(_gk_boxes(1), lambda c: c + np.array([38_000_000.0, 0.0]))
    path = _write(tmp_path / "z.gpkg", boxes, {"NAME": ["a"]}, driver="GPKG")
    report = ingest_vector(engine, path, settings, layer="buildings")
    assert report.crs_in == "EPSG:4526"
    assert _buildings(engine)[0]["lon"] == pytest.approx(WUHAN[0], abs=1e-3)


def test_invalid_polygons_are_repaired_and_empties_skipped(engine, settings, tmp_path):
    ok = _gk_boxes(2)
    x0, y0, _, _ = ok[0].bounds
    bowtie = shapely.Polygon([(x0, y0), (x0 + 10, y0 + 10), (x0 + 10, y0), (x0, y0 + 10), (x0, y0)])
    geoms = np.array([ok[0], bowtie, shapely.Polygon(), ok[1]], dtype=object)
    path = _write(tmp_path / "r.gpkg", geoms, {"NAME": ["a", "bow", "empty", "b"]}, driver="GPKG")
    report = ingest_vector(engine, path, settings, layer="buildings")
    assert (report.read, report.stored, report.repaired, report.skipped_empty) == (4, 3, 1, 1)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT bool_and(ST_IsValid(footprint)) FROM building")).scalar()


def test_mixed_geometry_geojson_filtered_by_where(engine, settings, tmp_path):
    lon, lat = WUHAN
    features = [
        {
            "type": "Feature",
            "properties": {"building": "apartments", "name": "A座", "building:levels": 12},
            "geometry": shapely.geometry.mapping(shapely.box(lon, lat, lon + 2e-4, lat + 2e-4)),
        },
        {
            "type": "Feature",
            "properties": {"building": "school", "name": "小学"},
            "geometry": shapely.geometry.mapping(shapely.box(lon + 1e-3, lat, lon + 12e-4, lat + 2e-4)),
        },
        {
            "type": "Feature",
            "properties": {"highway": "primary", "name": "解放大道"},
            "geometry": {"type": "LineString", "coordinates": [[lon, lat], [lon + 0.01, lat]]},
        },
        {
            "type": "Feature",
            "properties": {"amenity": "clinic", "name": "诊所"},
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
        },
    ]
    path = tmp_path / "osm.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False), "utf-8")
    report = ingest_vector(engine, path, settings, layer="buildings", where="building IS NOT NULL")
    assert (report.read, report.stored) == (2, 2)
    rows = _buildings(engine)
    assert [r["use"] for r in rows] == ["residential", "education"]
    assert rows[0]["height"] == 36.0 and rows[0]["storeys"] == 12
    roads = ingest_vector(engine, path, settings, layer="facilities", kind="road", where="highway IS NOT NULL")
    assert roads.stored == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT road_class FROM facility WHERE kind='road'")).scalar() == "primary"


def test_flatgeobuf_and_csv_wkt_facilities(engine, settings, tmp_path):
    x0, y0 = cimcrs.transform_xy([WUHAN[0]], [WUHAN[1]], 4490, 4547)
    pipes = shapely.linestrings(
        [[(x0[0], y0[0]), (x0[0] + 100, y0[0])], [(x0[0], y0[0] + 50), (x0[0] + 80, y0[0] + 50)]]
    )
    fgb = _write(
        tmp_path / "pipes.fgb",
        pipes,
        {"管径": [300.0, 200.0], "埋深": [1.5, 1.2], "材质": ["球墨铸铁", "PE"], "压力等级": ["中压", "低压"]},
        driver="FlatGeobuf",
    )
    report = ingest_vector(engine, fgb, settings, layer="facilities", kind="pipe_gas")
    assert report.stored == 2
    csv = tmp_path / "parks.csv"
    park = shapely.box(x0[0], y0[0], x0[0] + 50, y0[0] + 40)  # 2000 m²
    csv.write_text(f'WKT,名称\n"{park.wkt}",小游园\n"POINT ({x0[0]} {y0[0]})",点\n', encoding="utf-8")
    with pytest.raises(CrsError):
        ingest_vector(engine, csv, settings, layer="facilities", kind="park")
    parks = ingest_vector(engine, csv, settings, layer="facilities", kind="park", crs="EPSG:4547")
    assert (parks.stored, parks.skipped_geometry_type) == (1, 1)
    gas = rows(
        engine,
        "SELECT diameter_mm, depth_m, material, pressure_class FROM facility WHERE kind='pipe_gas' "
        "ORDER BY diameter_mm DESC",
    )
    ((area, name),) = rows(engine, "SELECT area_m2, name FROM facility WHERE kind='park'")
    assert gas[0] == (300.0, 1.5, "球墨铸铁", "中压")
    assert name == "小游园" and area == pytest.approx(2000.0, rel=2e-3)


def test_reingest_of_same_bytes_is_a_noop_and_changed_file_supersedes(engine, settings, tmp_path):
    path = _write(tmp_path / "b.gpkg", _gk_boxes(3), {"NAME": ["a", "b", "c"]}, driver="GPKG")
    first = ingest_vector(engine, path, settings, layer="buildings")
    again = ingest_vector(engine, path, settings, layer="buildings")
    assert again.skipped and again.dataset_id == first.dataset_id
    _write(path, _gk_boxes(2), {"NAME": ["a", "b"]}, driver="GPKG")
    newer = ingest_vector(engine, path, settings, layer="buildings")
    assert newer.superseded_dataset_id == first.dataset_id
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM building WHERE valid_to IS NULL")).scalar() == 2
        assert conn.execute(text("SELECT count(*) FROM building")).scalar() == 5


def test_failed_ingest_leaves_database_unchanged(engine, settings, tmp_path):
    good = _write(tmp_path / "g.gpkg", _gk_boxes(2), {"NAME": ["a", "b"]}, driver="GPKG")
    ingest_vector(engine, good, settings, layer="buildings")
    with engine.connect() as conn:
        before = (
            conn.execute(text("SELECT count(*) FROM building")).scalar(),
            conn.execute(text("SELECT count(*) FROM dataset")).scalar(),
        )
    # The first batch is fine, the second lies in another zone: the whole ingest must roll back.
    boxes = list(_gk_boxes(3)) + list(shapely.transform(_gk_boxes(2), lambda c: c + np.array([2_000_000.0, 0.0])))
    bad = _write(tmp_path / "bad.gpkg", np.array(boxes, dtype=object), {"NAME": list("abcde")}, driver="GPKG")
    import ingest.vector as iv

    old = iv.BATCH_SIZE
    iv.BATCH_SIZE = 3
    try:
        with pytest.raises(CrsError):
            ingest_vector(engine, bad, settings, layer="buildings")
    finally:
        iv.BATCH_SIZE = old
    with engine.connect() as conn:
        after = (
            conn.execute(text("SELECT count(*) FROM building")).scalar(),
            conn.execute(text("SELECT count(*) FROM dataset")).scalar(),
        )
    assert after == before


def test_parcels_planning_and_districts_with_limits(engine, settings, tmp_path):
    boxes = _gk_boxes(2, size=40.0)
    parcels = _write(
        tmp_path / "p.gpkg",
        boxes,
        {
            "地块编码": ["JA-01", "JA-02"],
            "用地性质": ["R2", "B1"],
            "建筑限高": [60.0, 100.0],
            "容积率": [2.5, 4.0],
            "建筑密度": [30.0, 0.4],
            "绿地率": [35.0, 0.2],
            "建筑退线": [8.0, 10.0],
        },
        driver="GPKG",
    )
    assert ingest_vector(engine, parcels, settings, layer="parcels").stored == 2
    zones = _write(
        tmp_path / "z.gpkg", boxes[:1], {"CODE": ["HZ-1"], "ZONE_TYPE": ["height"], "MAX_HEIGHT": [80.0]}, driver="GPKG"
    )
    assert ingest_vector(engine, zones, settings, layer="planning").stored == 1
    districts = _write(
        tmp_path / "d.gpkg",
        boxes,
        {"行政区划代码": [420102, 420103], "名称": ["江岸区", "江汉区"], "常住人口": [965000, 648000]},
        driver="GPKG",
    )
    assert ingest_vector(engine, districts, settings, layer="districts").stored == 2
    p = rows(
        engine,
        "SELECT code, land_use, max_height, max_far, max_density, min_green_ratio, setback_m FROM parcel ORDER BY code",
    )
    d = rows(engine, "SELECT code, name, population FROM district ORDER BY code")
    (z,) = rows(engine, "SELECT code, zone_type, max_height FROM planning_zone")
    assert p[0] == ("JA-01", "R2", 60.0, 2.5, 0.3, 0.35, 8.0)
    assert p[1][4:6] == (0.4, 0.2)
    assert d == [("420102", "江岸区", 965000), ("420103", "江汉区", 648000)]
    assert z == ("HZ-1", "height", 80.0)


def test_map_option_and_unknown_target(engine, settings, tmp_path):
    path = _write(tmp_path / "m.gpkg", _gk_boxes(1), {"BH": [42.0], "NAME": ["x"]}, driver="GPKG")
    with pytest.raises(IngestError, match="not a column"):
        ingest_vector(engine, path, settings, layer="buildings", mapping={"tallness": "BH"})
    ingest_vector(engine, path, settings, layer="buildings", mapping={"height": "BH"})
    assert _buildings(engine)[0]["height"] == 42.0


def test_cli_vector_json(run_cim, tmp_path):
    path = _write(tmp_path / "c.gpkg", _gk_boxes(2), {"NAME": ["a", "b"]}, driver="GPKG")
    result = run_cim("ingest", "vector", str(path), "--layer", "buildings", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["stored"] == 2 and doc["read"] == 2 and doc["dataset_id"] and "wall_time_s" in doc
    bad = run_cim("ingest", "vector", str(path), "--layer", "facilities")
    assert bad.exit_code == IngestError.exit_code and "--kind" in bad.stderr


def test_city_local_crs_mapping_and_storey_height_from_config(engine, settings, tmp_path):
    dx, dy = 500_000.0, 3_300_000.0
    local = shapely.transform(_gk_boxes(2), lambda c: c - np.array([dx, dy]))
    path = _write(tmp_path / "local.gpkg", local, {"BH": [None, 30.0], "FLOORS": [4, 10]}, crs=None, driver="GPKG")
    config = tmp_path / "city.toml"
    config.write_text(
        f'[local_crs]\ntype = "helmert4"\nname = "武汉城建坐标系（示例）"\nbase = "EPSG:4547"\ndx = {dx}\ndy = {dy}\n'
        '[mapping]\nheight = "BH"\n[buildings]\nstorey_height = 3.5\n',
        encoding="utf-8",
    )
    report = ingest_vector(engine, path, settings, layer="buildings", config=config)
    assert report.stored == 2 and report.heights_from_storeys == 1
    rows = _buildings(engine)
    assert [r["height"] for r in rows] == [14.0, 30.0]
    assert rows[0]["lon"] == pytest.approx(WUHAN[0], abs=1e-3) and rows[0]["lat"] == pytest.approx(WUHAN[1], abs=1e-3)


def _index_and_keys(engine) -> tuple[list, list]:
    with engine.connect() as conn:
        indexes = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE tablename = 'building' ORDER BY 1")).all()
        keys = conn.execute(
            text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'building'::regclass ORDER BY 1"
            )
        ).all()
    return indexes, keys


def test_bulk_load_path_restores_gist_index_and_foreign_key(engine, settings, tmp_path, monkeypatch):
    import ingest.vector as iv

    schema = _index_and_keys(engine)
    assert any(k[0] == "building_dataset_id_fkey" for k in schema[1])
    monkeypatch.setattr(iv, "REBUILD_INDEX_FROM", 1)  # take the drop-and-rebuild path on a small file
    good = _write(tmp_path / "g.gpkg", _gk_boxes(5), {"NAME": list("abcde")}, driver="GPKG")
    assert ingest_vector(engine, good, settings, layer="buildings").stored == 5
    assert _index_and_keys(engine) == schema
    boxes = list(_gk_boxes(3)) + list(shapely.transform(_gk_boxes(2), lambda c: c + np.array([2_000_000.0, 0.0])))
    bad = _write(tmp_path / "bad.gpkg", np.array(boxes, dtype=object), {"NAME": list("abcde")}, driver="GPKG")
    monkeypatch.setattr(iv, "BATCH_SIZE", 3)
    with pytest.raises(CrsError):
        ingest_vector(engine, bad, settings, layer="buildings")
    assert _index_and_keys(engine) == schema
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM building")).scalar() == 5
        assert conn.execute(text("SELECT count(*) FROM building b JOIN dataset d ON d.id = b.dataset_id")).scalar() == 5


def test_concurrent_bulk_loads_serialise_without_deadlock(engine, settings, tmp_path, monkeypatch):
    import threading

    import ingest.vector as iv

    monkeypatch.setattr(iv, "REBUILD_INDEX_FROM", 1)
    files = [
        _write(tmp_path / f"c{i}.gpkg", _gk_boxes(40 + i), {"NAME": [str(j) for j in range(40 + i)]}, driver="GPKG")
        for i in range(3)
    ]
    errors: list[BaseException] = []

    def load(path: Path) -> None:
        try:
            ingest_vector(engine, path, settings, layer="buildings")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(p,)) for p in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM building")).scalar() == 40 + 41 + 42


def test_several_zone_files_load_in_one_call_one_dataset_each(engine, settings, tmp_path, monkeypatch):
    import ingest.vector as iv
    from ingest.vector import ingest_vectors

    schema = _index_and_keys(engine)
    monkeypatch.setattr(iv, "REBUILD_INDEX_FROM", 1)  # one drop-and-rebuild for all the files
    a = _write(tmp_path / "a.gpkg", _gk_boxes(4), {"NAME": list("abcd")}, driver="GPKG")
    east = shapely.transform(_gk_boxes(3), lambda c: c + np.array([0.0, 1000.0]))
    b = _write(tmp_path / "b.gpkg", east, {"名称": list("xyz")}, driver="GPKG")
    seen: list[tuple[int, int | None]] = []
    reports = ingest_vectors(engine, [a, b], settings, layer="buildings", progress=lambda r, t: seen.append((r, t)))
    assert [r.stored for r in reports] == [4, 3]
    assert len({r.dataset_id for r in reports}) == 2 and seen[-1] == (7, 7)
    assert _index_and_keys(engine) == schema
    with engine.connect() as conn:
        names = conn.execute(text("SELECT d.name, b.name FROM building b JOIN dataset d ON d.id = b.dataset_id")).all()
    assert sorted(n for _, n in names) == list("abcdxyz") and {d for d, _ in names} == {"a", "b"}
    again = ingest_vectors(engine, [a, b], settings, layer="buildings")
    assert all(r.skipped for r in again) and [r.dataset_id for r in again] == [r.dataset_id for r in reports]


def test_failed_file_of_several_stores_nothing_of_itself_and_keeps_earlier_ones(
    engine, settings, tmp_path, monkeypatch
):
    import ingest.vector as iv
    from ingest.vector import PartialIngestError, ingest_vectors

    schema = _index_and_keys(engine)
    monkeypatch.setattr(iv, "REBUILD_INDEX_FROM", 1)
    monkeypatch.setattr(iv, "BATCH_SIZE", 3)
    good = _write(tmp_path / "good.gpkg", _gk_boxes(5), {"NAME": list("abcde")}, driver="GPKG")
    # The bad file's first batch is fine, its second lies in another zone.
    boxes = list(_gk_boxes(3)) + list(shapely.transform(_gk_boxes(2), lambda c: c + np.array([2_000_000.0, 0.0])))
    bad = _write(tmp_path / "bad.gpkg", np.array(boxes, dtype=object), {"NAME": list("fghij")}, driver="GPKG")
    later = _write(tmp_path / "later.gpkg", _gk_boxes(2), {"NAME": list("kl")}, driver="GPKG")
    with pytest.raises(PartialIngestError, match=r"bad\.gpkg") as caught:
        ingest_vectors(engine, [good, bad, later], settings, layer="buildings")
    assert [Path(r.path).name for r in caught.value.stored] == ["good.gpkg"]
    assert _index_and_keys(engine) == schema
    with engine.connect() as conn:
        assert conn.execute(text("SELECT string_agg(name, '' ORDER BY name) FROM building")).scalar() == "abcde"
        assert conn.execute(text("SELECT count(*) FROM dataset WHERE kind = 'vector'")).scalar() == 1
    # A failure of the first file stores nothing at all, with the single-file error.
    with pytest.raises(CrsError):
        ingest_vectors(engine, [bad, later], settings, layer="buildings")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM building")).scalar() == 5


def test_a_missing_file_among_several_is_refused_before_anything_is_written(engine, settings, tmp_path):
    from ingest.vector import ingest_vectors

    good = _write(tmp_path / "good.gpkg", _gk_boxes(2), {"NAME": list("ab")}, driver="GPKG")
    with pytest.raises(IngestError, match="does not exist"):
        ingest_vectors(engine, [good, tmp_path / "missing.gpkg"], settings, layer="buildings")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM building")).scalar() == 0


def test_large_batches_are_written_in_space_order_and_keep_every_attribute(engine, settings, tmp_path):
    """Rows in random source order: a large batch is stored in Z-order of the footprints (neighbours share
    heap pages); each row keeps its own attributes; a small file keeps its order."""
    from cim.zorder import lonlat_order
    from ingest.vector import SPACE_ORDER_FROM

    n = SPACE_ORDER_FROM + 500
    rng = np.random.default_rng(5)
    x0, y0 = cimcrs.transform_xy([WUHAN[0]], [WUHAN[1]], 4490, 4547)
    xs, ys = x0[0] + rng.uniform(0, 20_000, n), y0[0] + rng.uniform(0, 20_000, n)
    big = _write(
        tmp_path / "big.gpkg",
        shapely.box(xs, ys, xs + 15, ys + 10),
        {"name": [f"b{i}" for i in range(n)], "height": (np.arange(n) % 90 + 3.0).tolist()},
    )
    report = ingest_vector(engine, big, settings, layer="buildings")
    assert report.stored == n
    stored = rows(
        engine,
        "SELECT name, height, ST_X(ST_Centroid(footprint)), ST_Y(ST_Centroid(footprint)) FROM building ORDER BY id",
    )
    lon = np.array([r[2] for r in stored])
    lat = np.array([r[3] for r in stored])
    assert np.array_equal(lonlat_order(lon, lat), np.arange(n))  # already in Z-order
    assert sorted(r[0] for r in stored) == sorted(f"b{i}" for i in range(n))
    assert all(float(r[1]) == int(r[0][1:]) % 90 + 3.0 for r in stored)  # attributes moved with their rows
    # each row's footprint is the one its source row had
    lon0, lat0 = cimcrs.transform_xy(xs + 7.5, ys + 5, 4547, 4490)
    where = {f"b{i}": (lon0[i], lat0[i]) for i in range(n)}
    assert all(abs(r[2] - where[r[0]][0]) < 1e-6 and abs(r[3] - where[r[0]][1]) < 1e-6 for r in stored)
    small = _write(tmp_path / "small.gpkg", _gk_boxes(30)[::-1], {"name": [f"s{i}" for i in range(30)]})
    ingest_vector(engine, small, settings, layer="buildings")
    names = [r[0] for r in rows(engine, "SELECT name FROM building WHERE name LIKE 's%' ORDER BY id")]
    assert names == [f"s{i}" for i in range(30)]

// Measurement tools: distance (3D polyline), horizontal area (polygon projected on the local tangent
// plane) and height difference. Left click adds a point, right click or double click ends.

import { t } from "./i18n.js";

function formatLength(m) {
  return m >= 1000 ? t("unit.km", { v: (m / 1000).toFixed(3) }) : t("unit.m", { v: m.toFixed(2) });
}

function formatArea(m2) {
  return m2 >= 1e6 ? t("unit.km2", { v: (m2 / 1e6).toFixed(3) }) : t("unit.m2", { v: m2.toFixed(1) });
}

/** Sum of straight 3D segment lengths in metres (ECEF positions). */
export function polylineLength(Cesium, positions) {
  let total = 0;
  for (let i = 1; i < positions.length; i += 1) total += Cesium.Cartesian3.distance(positions[i - 1], positions[i]);
  return total;
}

/** Horizontal area in m² of a polygon given as ECEF positions (east/north of the first vertex, shoelace). */
export function horizontalArea(Cesium, positions) {
  if (positions.length < 3) return 0;
  const toLocal = Cesium.Matrix4.inverseTransformation(
    Cesium.Transforms.eastNorthUpToFixedFrame(positions[0]),
    new Cesium.Matrix4(),
  );
  const pts = positions.map((p) => Cesium.Matrix4.multiplyByPoint(toLocal, p, new Cesium.Cartesian3()));
  let twice = 0;
  for (let i = 0; i < pts.length; i += 1) {
    const a = pts[i];
    const b = pts[(i + 1) % pts.length];
    twice += a.x * b.y - b.x * a.y;
  }
  return Math.abs(twice) / 2;
}

/** Height difference in metres between two ECEF positions (ellipsoidal heights). */
export function heightDifference(Cesium, a, b) {
  return Math.abs(Cesium.Cartographic.fromCartesian(b).height - Cesium.Cartographic.fromCartesian(a).height);
}

/**
 * Create the measurement controller.
 * @param {object} ctx {Cesium, viewer}
 */
export function createMeasure(ctx) {
  const { Cesium, viewer } = ctx;
  const scene = viewer.scene;
  const output = document.getElementById("measure-result");
  const buttons = [...document.querySelectorAll("[data-tool]")];
  const entities = new Cesium.CustomDataSource("measure");
  viewer.dataSources.add(entities);
  let mode = null;
  let shapeMode = null;
  let points = [];
  let cursor = null;
  let handler = null;
  let lastResult = null;

  function worldPosition(windowPosition) {
    let position;
    if (scene.pickPositionSupported) {
      const picked = scene.pick(windowPosition);
      if (picked) position = scene.pickPosition(windowPosition);
    }
    if (!position) {
      const ray = viewer.camera.getPickRay(windowPosition);
      if (ray) position = scene.globe.pick(ray, scene);
    }
    return position ?? viewer.camera.pickEllipsoid(windowPosition, scene.globe.ellipsoid);
  }

  function current() {
    return cursor ? [...points, cursor] : points;
  }

  function result(positions) {
    const mode = shapeMode;
    if (mode === "distance") return { mode, value: polylineLength(Cesium, positions), text: t("tools.distanceResult", { value: formatLength(polylineLength(Cesium, positions)) }) };
    if (mode === "area") return { mode, value: horizontalArea(Cesium, positions), text: t("tools.areaResult", { value: formatArea(horizontalArea(Cesium, positions)) }) };
    if (positions.length < 2) return { mode, value: 0, text: "" };
    const dh = heightDifference(Cesium, positions[0], positions[1]);
    return { mode, value: dh, text: t("tools.heightResult", { value: formatLength(dh) }) };
  }

  function addShapes() {
    const line = new Cesium.CallbackProperty(() => {
      const pos = current();
      return shapeMode === "area" && pos.length > 2 ? [...pos, pos[0]] : pos;
    }, false);
    entities.entities.add({ polyline: { positions: line, width: 3, material: Cesium.Color.ORANGE, depthFailMaterial: Cesium.Color.ORANGE.withAlpha(0.5) } });
    if (mode === "area") {
      entities.entities.add({
        polygon: {
          hierarchy: new Cesium.CallbackProperty(() => new Cesium.PolygonHierarchy(current()), false),
          perPositionHeight: true,
          material: Cesium.Color.ORANGE.withAlpha(0.35),
        },
      });
    }
    entities.entities.add({
      position: new Cesium.CallbackProperty(() => current().at(-1), false),
      label: {
        text: new Cesium.CallbackProperty(() => (current().length > 1 ? result(current()).text : t("tools.hint")), false),
        font: "14px sans-serif",
        fillColor: Cesium.Color.WHITE,
        showBackground: true,
        backgroundColor: Cesium.Color.fromCssColorString("rgba(20,30,45,0.8)"),
        pixelOffset: new Cesium.Cartesian2(0, -20),
        disableDepthTestDistance: Number.POSITIVE_INFINITY,
      },
    });
  }

  function finish() {
    cursor = null;
    if (points.length > 1) {
      lastResult = result(points);
      output.textContent = lastResult.text;
    }
    stop();
  }

  function stop() {
    handler?.destroy();
    handler = null;
    mode = null;
    for (const b of buttons) b.classList.remove("active");
    viewer.canvas.style.cursor = "";
    scene.requestRender();
  }

  function start(next) {
    stop();
    clear();
    mode = next;
    shapeMode = next;
    document.querySelector(`[data-tool="${next}"]`)?.classList.add("active");
    viewer.canvas.style.cursor = "crosshair";
    output.textContent = t("tools.hint");
    addShapes();
    handler = new Cesium.ScreenSpaceEventHandler(viewer.canvas);
    handler.setInputAction((event) => {
      const position = worldPosition(event.position);
      if (!position) return;
      points.push(position);
      entities.entities.add({ position, point: { pixelSize: 8, color: Cesium.Color.ORANGE, disableDepthTestDistance: Number.POSITIVE_INFINITY } });
      if (mode === "height" && points.length === 2) finish();
      scene.requestRender();
    }, Cesium.ScreenSpaceEventType.LEFT_CLICK);
    handler.setInputAction((event) => {
      if (points.length === 0) return;
      cursor = worldPosition(event.endPosition) ?? cursor;
      scene.requestRender();
    }, Cesium.ScreenSpaceEventType.MOUSE_MOVE);
    handler.setInputAction(finish, Cesium.ScreenSpaceEventType.RIGHT_CLICK);
    handler.setInputAction(finish, Cesium.ScreenSpaceEventType.LEFT_DOUBLE_CLICK);
  }

  function clear() {
    points = [];
    cursor = null;
    lastResult = null;
    entities.entities.removeAll();
    output.textContent = "";
    scene.requestRender();
  }

  for (const b of buttons) b.addEventListener("click", () => start(b.dataset.tool));
  document.getElementById("btn-clear-measure").addEventListener("click", () => {
    stop();
    clear();
  });

  return {
    start,
    finish,
    clear,
    get active() {
      return mode !== null;
    },
    get lastResult() {
      return lastResult;
    },
  };
}

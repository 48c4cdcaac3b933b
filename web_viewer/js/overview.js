// The province overview from /overview: district outlines, one label per city with its counts (buildings,
// facilities, sensors when any), a click on a city flies there. Above the API's `overview_above_m` camera
// height the 3D content is hidden and the overview speaks; below it the 3D content takes over.

import { getJson } from "./api.js";
import { currentLang, t } from "./i18n.js";
import { renderLegend } from "./style.js";

const BOUNDARY_CSS = "#ffd54f";
const CITY_CSS = "#ff7043";

/** The /overview document, or null when the API has none (older server, error). */
export async function loadOverview() {
  const result = await getJson("/overview");
  return result.ok && result.data ? result.data : null;
}

function ringsOf(geometry) {
  if (!geometry) return [];
  if (geometry.type === "Polygon") return geometry.coordinates;
  if (geometry.type === "MultiPolygon") return geometry.coordinates.flat();
  return [];
}

/**
 * Create the overview controller.
 * @param {object} ctx {Cesium, viewer, layers, onChange}
 * @param {object|null} data the /overview document
 */
export function createOverview(ctx, data) {
  const { Cesium, viewer } = ctx;
  const box = document.getElementById("om-overview");
  const legend = document.getElementById("onemap-legend");
  const threshold = data?.overview_above_m ?? 60000;
  const cities = data?.cities ?? [];
  const source = new Cesium.CustomDataSource("overview");
  const cityEntities = new Map(); // entity id → city
  const outlineCity = new Map(); // outline entity id → city code
  let above = false;

  for (const feature of data?.districts?.features ?? []) {
    for (const ring of ringsOf(feature.geometry)) {
      const id = `district:${feature.id}:${source.entities.values.length}`;
      outlineCity.set(id, feature.properties.city_code);
      source.entities.add({
        id,
        polyline: {
          positions: Cesium.Cartesian3.fromDegreesArray(ring.flat()),
          width: 2,
          material: Cesium.Color.fromCssColorString(BOUNDARY_CSS),
          depthFailMaterial: Cesium.Color.fromCssColorString(BOUNDARY_CSS),
          arcType: Cesium.ArcType.GEODESIC,
        },
      });
    }
  }

  function cityText(city) {
    const name = currentLang() === "en" ? city.name.en : city.name.zh;
    let text = t("onemap.city", { name, buildings: city.counts.buildings ?? 0, facilities: city.counts.facilities ?? 0 });
    if (city.counts.sensors) text += t("onemap.citySensors", { sensors: city.counts.sensors });
    return text;
  }

  for (const city of cities) {
    const entity = source.entities.add({
      id: `city:${city.code}`,
      position: Cesium.Cartesian3.fromDegrees(city.center[0], city.center[1], 0),
      point: { pixelSize: 10, color: Cesium.Color.fromCssColorString(CITY_CSS), outlineColor: Cesium.Color.WHITE, outlineWidth: 2,
        disableDepthTestDistance: Number.POSITIVE_INFINITY },
      label: {
        text: cityText(city),
        font: "bold 15px sans-serif",
        fillColor: Cesium.Color.WHITE,
        showBackground: true,
        backgroundColor: Cesium.Color.fromCssColorString("#1d2a3a").withAlpha(0.8),
        pixelOffset: new Cesium.Cartesian2(0, -14),
        verticalOrigin: Cesium.VerticalOrigin.BOTTOM,
        disableDepthTestDistance: Number.POSITIVE_INFINITY,
      },
    });
    cityEntities.set(entity.id, city);
  }
  viewer.dataSources.add(source);

  function showLegend() {
    renderLegend(legend, cities.length || data?.districts?.features?.length
      ? [[t("onemap.boundary"), BOUNDARY_CSS], [t("onemap.cityLabel"), CITY_CSS]]
      : []);
  }

  const byCount = [...cities].sort((a, b) => (b.counts.buildings ?? 0) - (a.counts.buildings ?? 0));

  /** Hide the text of a city label that would overlap a city with more buildings (its marker stays). */
  function declutter() {
    const placed = [];
    for (const city of byCount) {
      const entity = source.entities.getById(`city:${city.code}`);
      const p = Cesium.SceneTransforms.worldToWindowCoordinates(viewer.scene, entity.position.getValue(viewer.clock.currentTime));
      const lines = cityText(city).split("\n");
      const w = Math.max(...lines.map((l) => l.length)) * 11 + 10;
      const r = p ? { x0: p.x - w / 2, x1: p.x + w / 2, y0: p.y - 14 - lines.length * 19, y1: p.y - 10 } : null;
      const keep = Boolean(r) && !placed.some((q) => r.x0 < q.x1 && q.x0 < r.x1 && r.y0 < q.y1 && q.y0 < r.y1);
      if (keep) placed.push(r);
      entity.label.show = keep;
    }
  }

  /** Show or hide the overview for the camera's height; hide the 3D content above the threshold. */
  function update() {
    const height = viewer.camera.positionCartographic.height;
    const nextAbove = box.checked && cities.length > 0 && height > threshold;
    source.show = box.checked;
    for (const entity of source.entities.values) if (entity.label) entity.show = nextAbove;
    if (nextAbove) declutter();
    if (nextAbove !== above) {
      above = nextAbove;
      ctx.suppress3d = above;
      ctx.layers?.applyVisibility();
    }
    viewer.scene.requestRender();
  }

  /** Fly to a city: its centre, seen from below the threshold at a 50° pitch. Resolves when arrived. */
  function flyTo(code) {
    const city = cities.find((c) => c.code === code);
    if (!city) return Promise.resolve(false);
    const [w, s, e, n] = city.bbox;
    const span = Cesium.Cartesian3.distance(Cesium.Cartesian3.fromDegrees(w, s), Cesium.Cartesian3.fromDegrees(e, n));
    const height = Math.max(800, Math.min(threshold * 0.5, span * 0.6));
    const pitch = Cesium.Math.toRadians(-50);
    const back = height / Math.tan(-pitch) / 111_320;
    return new Promise((resolve) => {
      viewer.camera.flyTo({
        destination: Cesium.Cartesian3.fromDegrees(city.center[0], city.center[1] - back, height),
        orientation: { heading: 0, pitch, roll: 0 },
        duration: 1.5,
        complete: () => {
          update();
          // moveEnd (labels, shareable link) is raised by the next frame: request it.
          viewer.scene.requestRender();
          resolve(true);
        },
        cancel: () => resolve(false),
      });
    });
  }

  /** Handle a click: true when it hit a city (its label or marker, or, above the threshold, an outline). */
  let flight = Promise.resolve(false);

  function pickAt(position) {
    if (!source.show) return false;
    const ids = viewer.scene.drillPick(position, 8).map((p) => p?.id?.id).filter(Boolean);
    const city = ids.map((id) => cityEntities.get(id)).find(Boolean);
    const code = city?.code ?? (above ? ids.map((id) => outlineCity.get(id)).find(Boolean) : undefined);
    if (!code) return false;
    flight = flyTo(code);
    return true;
  }

  box.addEventListener("change", () => {
    update();
    showLegend();
    ctx.onChange?.();
  });
  viewer.camera.changed.addEventListener(update);
  viewer.camera.moveEnd.addEventListener(update);
  viewer.camera.percentageChanged = 0.05;
  showLegend();
  update();

  return {
    source,
    threshold,
    cities,
    update,
    flyTo,
    pickAt,
    /** The latest flight started by a click (resolves true on arrival). */
    get flight() {
      return flight;
    },
    relabel() {
      for (const [id, city] of cityEntities) source.entities.getById(id).label.text = cityText(city);
      showLegend();
      viewer.scene.requestRender();
    },
    /** True while the overview replaces the 3D content. */
    get active() {
      return above;
    },
    /** City labels currently shown, in the current language. */
    get shownCities() {
      return above ? cities.filter((c) => source.entities.getById(`city:${c.code}`).label.show.getValue()).map(cityText) : [];
    },
    get districtOutlines() {
      return source.show ? source.entities.values.filter((e) => e.polyline).length : 0;
    },
  };
}

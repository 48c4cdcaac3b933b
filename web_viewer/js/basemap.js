// The offline base map: when no imagery service is configured (Natural Earth only), the platform's own
// /basemap XYZ tiles (parcels by land use, water, green, roads, footprints close up) are laid over Natural
// Earth within the extent of the stored data; the legend comes from the TileJSON at /basemap.

import { apiUrl, getJson } from "./api.js";
import { pick, t } from "./i18n.js";
import { renderLegend } from "./style.js";

/**
 * The deepest base-map level the viewer asks for (the service draws up to its TileJSON `maxzoom`): at zoom 17
 * a tile is about 300 m across (1.2 m a pixel), finer than the flat colours under the 3D blocks and ribbons
 * need; closer up Cesium magnifies it instead of asking the server to rasterise four (or sixteen) more tiles
 * for every one near the camera.
 */
export const BASEMAP_MAX_LEVEL = 17;

/**
 * Create the base-map controller.
 * @param {object} ctx {Cesium, viewer}
 * @param {object} config /viewer/config.json
 */
export async function createBasemap(ctx, config) {
  const { Cesium, viewer } = ctx;
  const box = document.getElementById("om-basemap");
  const legend = document.getElementById("basemap-legend");
  const configured = (config?.imagery?.type ?? "natural-earth") !== "natural-earth";
  const result = configured ? { ok: false } : await getJson("/basemap");
  const tilejson = result.ok ? result.data : null;
  const usable = Boolean(tilejson?.has_data);
  box.disabled = !usable;
  box.checked = usable && box.checked;
  let layer = null;
  const rectangle = usable ? Cesium.Rectangle.fromDegrees(...tilejson.bounds) : null;
  const template = apiUrl("/basemap/") + "{z}/{x}/{y}.png";

  /** An imagery layer of the base map (optionally at a past ISO moment), not yet added. */
  function imageryLayer(at = null) {
    const url = at ? `${template}?at=${encodeURIComponent(at)}` : template;
    return new Cesium.ImageryLayer(
      new Cesium.UrlTemplateImageryProvider({ url, rectangle, maximumLevel: Math.min(tilejson.maxzoom ?? 19, BASEMAP_MAX_LEVEL), credit: "CIM" }),
    );
  }

  function showLegend() {
    if (!usable || !box.checked) {
      renderLegend(legend, []);
      return;
    }
    const seen = new Set();
    const entries = [];
    for (const entry of tilejson.legend ?? []) {
      if (entry.layer === "buildings" || seen.has(entry.color)) continue;
      seen.add(entry.color);
      entries.push([pick([entry.zh, entry.en]), entry.color]);
    }
    renderLegend(legend, entries);
  }

  function apply() {
    if (usable && box.checked && !layer) {
      layer = imageryLayer();
      viewer.imageryLayers.add(layer, 1);
    } else if (layer && !(usable && box.checked)) {
      viewer.imageryLayers.remove(layer, true);
      layer = null;
    }
    showLegend();
    viewer.scene.requestRender();
  }

  box.addEventListener("change", () => {
    apply();
    ctx.onChange?.();
  });
  apply();
  return {
    usable,
    imageryLayer,
    relabel: showLegend,
    get layer() {
      return layer;
    },
    set(on) {
      box.checked = on;
      apply();
    },
    get on() {
      return Boolean(layer);
    },
    hint: () => t("onemap.basemap"),
  };
}

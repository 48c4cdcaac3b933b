// Compare and history. The time slider runs over the moments of /overview/history (datasets loaded or
// superseded; buildings and facilities keep their rows with valid_from/valid_to), and draws the platform's
// base map as it was then (/basemap?at=…) — the 3D tiles exist for the live rows only. The split view
// (Cesium's scene.splitPosition with SplitDirection on tilesets and imagery layers) puts "now" on the left
// and, on the right, the chosen past moment, or the second tileset when there are two, or the base map alone.

import { getJson } from "./api.js";
import { t } from "./i18n.js";
import { elements } from "./dom.js";

/**
 * Create the compare controller.
 * @param {object} ctx {Cesium, viewer, tilesets, layers}
 * @param {object} basemap the base-map controller (for history imagery)
 */
export async function createCompare(ctx, basemap) {
  const { Cesium, viewer } = ctx;
  const scene = viewer.scene;
  const [splitBox, slider, label, hint, divider] = elements("om-compare", "om-history", "om-history-label", "om-compare-hint", "split-divider");
  const result = await getJson("/overview/history");
  const moments = result.ok && Array.isArray(result.data?.moments) ? result.data.moments : [];
  const hasHistory = Boolean(result.data?.has_history) && basemap.usable;
  let history = null; // {at, layer}

  slider.min = "0";
  slider.max = String(moments.length);
  slider.value = String(moments.length);
  slider.disabled = !hasHistory;

  function momentAt(index) {
    return index >= 0 && index < moments.length ? moments[index] : null;
  }

  function describe(moment) {
    if (!moment) return t("onemap.historyNow");
    const when = moment.at.slice(0, 19).replace("T", " ");
    const what = moment.datasets.map((d) => `${d.name} v${d.version} ${t(`onemap.${d.event}`)}`).join("，");
    return t("onemap.historyAt", { at: when, what });
  }

  function apply() {
    const split = splitBox.checked;
    const moment = hasHistory ? momentAt(Number(slider.value)) : null;
    if (history && history.at !== moment?.at) {
      viewer.imageryLayers.remove(history.layer, true);
      history = null;
    }
    if (moment && !history) {
      history = { at: moment.at, layer: basemap.imageryLayer(moment.at) };
      viewer.imageryLayers.add(history.layer);
    }
    const names = [...ctx.tilesets.keys()];
    const rightTileset = split && !history && names.length > 1 ? names[1] : null;
    for (const [name, tileset] of ctx.tilesets) {
      if (!split) tileset.splitDirection = Cesium.SplitDirection.NONE;
      else tileset.splitDirection = name === rightTileset ? Cesium.SplitDirection.RIGHT : Cesium.SplitDirection.LEFT;
    }
    if (history) history.layer.splitDirection = split ? Cesium.SplitDirection.RIGHT : Cesium.SplitDirection.NONE;
    if (basemap.layer) basemap.layer.splitDirection = split && history ? Cesium.SplitDirection.LEFT : Cesium.SplitDirection.NONE;
    // A past moment without the split: the 2D past replaces the 3D present.
    ctx.historyHides3d = Boolean(history) && !split;
    ctx.layers.applyVisibility();
    scene.splitPosition = split ? Number(divider.dataset.position ?? 0.5) : 0;
    divider.hidden = !split;
    divider.style.left = `${(split ? scene.splitPosition : 0.5) * 100}%`;
    label.textContent = hasHistory ? describe(moment) : t("onemap.historyNone");
    hint.textContent = split
      ? t("onemap.compareHint", { right: history ? t("onemap.compareRightHistory") : rightTileset ? `▣ ${rightTileset}` : t("layers.imagery") })
      : "";
    scene.requestRender();
  }

  let dragging = false;
  divider.addEventListener("pointerdown", (event) => {
    dragging = true;
    divider.setPointerCapture(event.pointerId);
  });
  divider.addEventListener("pointermove", (event) => {
    if (!dragging) return;
    const rect = viewer.canvas.getBoundingClientRect();
    const position = Math.min(0.95, Math.max(0.05, (event.clientX - rect.left) / rect.width));
    divider.dataset.position = String(position);
    apply();
  });
  divider.addEventListener("pointerup", () => {
    dragging = false;
  });
  splitBox.addEventListener("change", apply);
  slider.addEventListener("input", apply);
  apply();

  return {
    moments,
    hasHistory,
    relabel: apply,
    /** Turn the split view on or off. */
    setSplit(on) {
      splitBox.checked = on;
      apply();
    },
    /** Choose a moment by index into `moments` (moments.length = now). */
    setMoment(index) {
      slider.value = String(index);
      apply();
    },
    get state() {
      return {
        split: splitBox.checked,
        splitPosition: scene.splitPosition,
        moment: history?.at ?? null,
        tilesets: Object.fromEntries([...ctx.tilesets].map(([n, ts]) => [n, ts.splitDirection])),
        historySplit: history?.layer.splitDirection ?? null,
      };
    },
  };
}

// Map labels from /labels for the current view (districts, roads, places and, close up, buildings), drawn
// as a Cesium LabelCollection in the current language and decluttered in screen space: labels are taken by
// priority and one that would overlap a label already placed is hidden.

import { getJson } from "./api.js";
import { currentLang, onLangChange } from "./i18n.js";

const STYLE = {
  district: { px: 18, css: "#fff59d", weight: "bold" },
  road: { px: 13, css: "#ffffff", weight: "normal" },
  place: { px: 13, css: "#c8e6c9", weight: "normal" },
  building: { px: 12, css: "#e3f2fd", weight: "normal" },
};

function textWidth(text, px) {
  let w = 0;
  for (const ch of text) w += /[\u2e80-\u9fff\uff00-\uffef]/.test(ch) ? px : px * 0.6;
  return w + 8;
}

/**
 * Create the label controller.
 * @param {object} ctx {Cesium, viewer}
 */
export function createLabels(ctx) {
  const { Cesium, viewer } = ctx;
  const box = document.getElementById("om-labels");
  const scene = viewer.scene;
  const collection = scene.primitives.add(new Cesium.LabelCollection({ scene }));
  let items = []; // {label, entry}
  let timer = null;
  let generation = 0;
  let current = Promise.resolve();

  function textOf(entry) {
    return currentLang() === "en" ? entry.text.en : entry.text.zh;
  }

  /** Hide labels that would overlap one of higher priority (and those behind the globe). */
  function declutter() {
    const placed = [];
    const width = viewer.canvas.clientWidth;
    const height = viewer.canvas.clientHeight;
    for (const item of items) {
      const p = Cesium.SceneTransforms.worldToWindowCoordinates(scene, item.position);
      const style = STYLE[item.entry.kind] ?? STYLE.road;
      let keep = Boolean(p) && p.x >= 0 && p.y >= 0 && p.x <= width && p.y <= height;
      if (keep) {
        const w = textWidth(textOf(item.entry), style.px);
        const r = { x0: p.x - w / 2, x1: p.x + w / 2, y0: p.y - style.px - 6, y1: p.y + 2 };
        keep = !placed.some((q) => r.x0 < q.x1 && q.x0 < r.x1 && r.y0 < q.y1 && q.y0 < r.y1);
        if (keep) placed.push(r);
      }
      item.label.show = keep;
    }
    scene.requestRender();
  }

  function rebuild(labels) {
    collection.removeAll();
    items = labels.map((entry) => {
      const style = STYLE[entry.kind] ?? STYLE.road;
      const onRoof = entry.kind === "building";
      const position = Cesium.Cartesian3.fromDegrees(entry.lon, entry.lat, onRoof ? entry.height + 3 : 0);
      const label = collection.add({
        position,
        text: textOf(entry),
        font: `${style.weight} ${style.px}px sans-serif`,
        fillColor: Cesium.Color.fromCssColorString(style.css),
        outlineColor: Cesium.Color.fromCssColorString("#102030"),
        outlineWidth: 3,
        style: Cesium.LabelStyle.FILL_AND_OUTLINE,
        verticalOrigin: Cesium.VerticalOrigin.BOTTOM,
        horizontalOrigin: Cesium.HorizontalOrigin.CENTER,
        heightReference: onRoof ? Cesium.HeightReference.NONE : Cesium.HeightReference.CLAMP_TO_GROUND,
        disableDepthTestDistance: Number.POSITIVE_INFINITY,
      });
      return { label, entry, position };
    });
    declutter();
  }

  /** Fetch the labels of the current view (resolves when drawn). */
  async function refresh() {
    const mine = ++generation;
    if (!box.checked) {
      rebuild([]);
      return;
    }
    const rect = viewer.camera.computeViewRectangle(scene.globe.ellipsoid);
    if (!rect) {
      rebuild([]);
      return;
    }
    const deg = (r) => Cesium.Math.toDegrees(r).toFixed(5);
    const bbox = [rect.west, rect.south, rect.east, rect.north].map(deg).join(",");
    if (rect.east <= rect.west) return; // across the antimeridian: nothing of ours is there
    const height = Math.max(0, viewer.camera.positionCartographic.height).toFixed(0);
    const result = await getJson(`/labels?bbox=${bbox}&height=${height}`);
    if (mine !== generation) return;
    rebuild(result.ok && Array.isArray(result.data?.labels) ? result.data.labels : []);
  }

  function schedule() {
    clearTimeout(timer);
    current = new Promise((resolve) => {
      timer = setTimeout(() => refresh().then(resolve, resolve), 150);
    });
  }

  viewer.camera.moveEnd.addEventListener(schedule);
  box.addEventListener("change", () => {
    schedule();
    ctx.onChange?.();
  });
  onLangChange(() => {
    for (const item of items) item.label.text = textOf(item.entry);
    declutter();
  });
  schedule();

  return {
    primitive: collection,
    refresh: () => {
      clearTimeout(timer);
      current = refresh();
      return current;
    },
    /** Resolves when the latest scheduled fetch has been drawn. */
    settled: () => current,
    declutter,
    /** The labels shown after decluttering: [{text, kind}]. */
    get shown() {
      return items.filter((i) => i.label.show).map((i) => ({ text: textOf(i.entry), kind: i.entry.kind }));
    },
    get loaded() {
      return items.length;
    },
  };
}

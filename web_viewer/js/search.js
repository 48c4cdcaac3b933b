// Search box: /search?q= (name, address, id, GlobalId) → result list → fly there and open the panel.

import { getJson } from "./api.js";
import { t } from "./i18n.js";

/**
 * Wire the search form.
 * @param {object} ctx {Cesium, viewer, panel}
 */
export function createSearch(ctx) {
  const { Cesium, viewer, panel } = ctx;
  const form = document.getElementById("search");
  const input = document.getElementById("search-input");
  const list = document.getElementById("search-results");
  let seq = 0;

  /** Fly the camera to a lon/lat (degrees) and height (metres). */
  function flyTo(lon, lat, height, duration = 1.5) {
    const center = Cesium.Cartesian3.fromDegrees(lon, lat, height || 0);
    viewer.camera.flyToBoundingSphere(new Cesium.BoundingSphere(center, 60), {
      offset: new Cesium.HeadingPitchRange(0, Cesium.Math.toRadians(-35), 260),
      duration,
    });
  }

  function choose(item) {
    list.hidden = true;
    const props =
      item.type === "element"
        ? { global_id: String(item.id), name: item.name }
        : { building_id: Number(item.id), name: item.name, address: item.address };
    flyTo(Number(item.lon), Number(item.lat), Number(item.height) || 0);
    panel.show({ kind: item.type === "element" ? "element" : "building", props, name: item.name });
  }

  async function run(query) {
    seq += 1;
    const mine = seq;
    if (!query.trim()) {
      list.hidden = true;
      return [];
    }
    const result = await getJson(`/search?q=${encodeURIComponent(query.trim())}&limit=10`);
    if (mine !== seq) return [];
    const items = result.ok && Array.isArray(result.data) ? result.data : [];
    list.replaceChildren();
    if (items.length === 0) {
      const li = document.createElement("li");
      li.textContent = t("search.none");
      list.append(li);
    }
    for (const item of items) {
      const li = document.createElement("li");
      li.textContent = `${item.name || item.id}${item.address ? ` · ${item.address}` : ""}`;
      li.addEventListener("click", () => choose(item));
      list.append(li);
    }
    list.hidden = false;
    return items;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const items = await run(input.value);
    if (items.length === 1) choose(items[0]);
  });
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => run(input.value), 300);
  });

  return { run, choose, flyTo };
}

// CIM+ overlays from the analysis API, drawn as GeoJsonDataSources: district choropleth of a health-check
// indicator, dangerous buildings (C/D), gas-pipe proximity, beyond-fire-reach areas, flood extent at a
// water level. A 404 or an empty collection shows "no data yet" instead of failing.

import { getJson } from "./api.js";
import { currentLang, pick, t } from "./i18n.js";
import { SAFETY_CLASSES } from "./vocab.js";
import { renderLegend } from "./style.js";
import { elements } from "./dom.js";

const RAMP = ["#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b"];
const FLOOD = ["#c6dbef", "#6baed6", "#2171b5", "#08306b"];

function rampColor(Cesium, ramp, value, min, max, alpha) {
  const span = max - min || 1;
  const i = Math.min(ramp.length - 1, Math.max(0, Math.floor(((value - min) / span) * ramp.length)));
  return Cesium.Color.fromCssColorString(ramp[i]).withAlpha(alpha);
}

function numericProperty(entity, names, time) {
  if (!entity.properties) return undefined;
  for (const name of names) {
    const v = entity.properties[name]?.getValue(time);
    if (typeof v === "number") return v;
    if (v && typeof v === "object") {
      for (const key of ["max", "mean", "value"]) if (typeof v[key] === "number") return v[key];
    }
  }
  return undefined;
}

/**
 * Create the overlay controller.
 * @param {object} ctx {Cesium, viewer, onChange}
 */
export function createOverlays(ctx) {
  const { Cesium, viewer } = ctx;
  const [message, legend, indicatorSelect, levelInput] = elements("overlay-message", "overlay-legend", "ov-indicator", "ov-flood-level");
  const active = new Map(); // key → GeoJsonDataSource
  const legends = new Map();
  let indicatorsLoaded = false;

  const DEFS = {
    choropleth: {
      label: "overlays.choropleth",
      path: () => (indicatorSelect.value ? `/analysis/health-check/choropleth?indicator=${encodeURIComponent(indicatorSelect.value)}` : null),
      style(source) {
        const values = source.entities.values.map((e) => numericProperty(e, ["value"], viewer.clock.currentTime)).filter((v) => v !== undefined);
        const min = Math.min(...values);
        const max = Math.max(...values);
        for (const e of source.entities.values) {
          if (!e.polygon) continue;
          const v = numericProperty(e, ["value"], viewer.clock.currentTime);
          e.polygon.material = v === undefined ? Cesium.Color.GRAY.withAlpha(0.3) : rampColor(Cesium, RAMP, v, min, max, 0.6);
          e.polygon.outline = false;
        }
        if (values.length) {
          const step = (max - min) / RAMP.length;
          return RAMP.map((css, i) => [`${(min + i * step).toFixed(2)} – ${(min + (i + 1) * step).toFixed(2)}`, css]);
        }
        return [];
      },
    },
    dangerous: {
      label: "overlays.dangerous",
      path: () => "/analysis/safety/dangerous-buildings",
      style(source) {
        for (const e of source.entities.values) {
          const cls = e.properties?.safety_class?.getValue(viewer.clock.currentTime);
          const css = SAFETY_CLASSES[cls]?.[2] ?? SAFETY_CLASSES.D[2];
          if (e.polygon) e.polygon.material = Cesium.Color.fromCssColorString(css).withAlpha(0.7);
          if (e.billboard) e.billboard.color = Cesium.Color.fromCssColorString(css);
        }
        return ["C", "D"].map((c) => [pick(SAFETY_CLASSES[c]), SAFETY_CLASSES[c][2]]);
      },
    },
    gas: {
      label: "overlays.gas",
      path: () => "/analysis/safety/gas-proximity",
      style(source) {
        for (const e of source.entities.values) {
          if (e.polygon) e.polygon.material = Cesium.Color.GOLD.withAlpha(0.45);
          if (e.polyline) e.polyline.material = Cesium.Color.GOLD;
        }
        return [[t("overlays.gas"), "#ffd700"]];
      },
    },
    fire: {
      label: "overlays.fire",
      path: () => "/analysis/safety/fire-coverage",
      style(source) {
        for (const e of source.entities.values) if (e.polygon) e.polygon.material = Cesium.Color.PURPLE.withAlpha(0.4);
        return [[t("overlays.fire"), "#800080"]];
      },
    },
    flood: {
      label: "overlays.flood",
      path: () => `/analysis/safety/flood?level=${encodeURIComponent(levelInput.value || "0")}`,
      style(source) {
        const time = viewer.clock.currentTime;
        const depths = source.entities.values.map((e) => numericProperty(e, ["depth", "depth_max", "max_depth"], time)).filter((v) => v !== undefined);
        const max = depths.length ? Math.max(...depths) : 1;
        for (const e of source.entities.values) {
          if (!e.polygon) continue;
          const d = numericProperty(e, ["depth", "depth_max", "max_depth"], time);
          e.polygon.material = rampColor(Cesium, FLOOD, d ?? max / 2, 0, max, 0.6);
        }
        const step = max / FLOOD.length;
        return FLOOD.map((css, i) => [`${(i * step).toFixed(1)}–${((i + 1) * step).toFixed(1)} m`, css]);
      },
    },
  };

  function showLegends() {
    const entries = [];
    for (const list of legends.values()) entries.push(...list);
    renderLegend(legend, entries);
  }

  let indicatorDefs = [];

  function fillIndicators() {
    const keep = indicatorSelect.value;
    const first = indicatorSelect.options[0];
    indicatorSelect.replaceChildren(first);
    for (const ind of indicatorDefs) {
      const option = document.createElement("option");
      option.value = ind.code;
      option.textContent = (currentLang() === "en" ? ind.en : ind.zh) || ind.code;
      indicatorSelect.append(option);
    }
    if (keep && !indicatorDefs.some((i) => i.code === keep)) {
      const option = document.createElement("option");
      option.value = keep;
      option.textContent = keep;
      indicatorSelect.append(option);
    }
    indicatorSelect.value = keep;
  }

  /** The indicator definitions (code, zh, en, unit…) from /analysis/health-check/indicators. */
  async function loadIndicators() {
    if (indicatorsLoaded) return;
    const result = await getJson("/analysis/health-check/indicators");
    if (!result.ok || !Array.isArray(result.data)) return;
    indicatorsLoaded = true;
    indicatorDefs = result.data.filter((i) => i && i.code);
    fillIndicators();
  }

  /** Turn overlay `key` on or off; resolves to a status string ("loaded" | "empty" | "failed" | "off"). */
  async function set(key, on) {
    const def = DEFS[key];
    const box = document.getElementById(`ov-${key}`);
    if (box) box.checked = on;
    const previous = active.get(key);
    if (previous) {
      viewer.dataSources.remove(previous, true);
      active.delete(key);
      legends.delete(key);
    }
    if (!on) {
      showLegends();
      viewer.scene.requestRender();
      ctx.onChange?.();
      return "off";
    }
    const name = t(def.label);
    if (key === "choropleth") {
      await loadIndicators();
      if (!indicatorSelect.value && indicatorDefs.length) indicatorSelect.value = indicatorDefs[0].code;
    }
    const path = def.path();
    if (!path) {
      message.textContent = t("overlays.noIndicator");
      return "empty";
    }
    const result = await getJson(path);
    if (!box?.checked && box) return "off";
    if (!result.ok) {
      message.textContent = result.status === 404 ? t("overlays.empty", { name }) : t("overlays.failed", { name, status: result.status });
      return result.status === 404 ? "empty" : "failed";
    }
    const features = result.data?.features;
    if (!Array.isArray(features) || features.length === 0) {
      message.textContent = t("overlays.empty", { name });
      return "empty";
    }
    const source = await Cesium.GeoJsonDataSource.load(result.data, {
      clampToGround: true,
      stroke: Cesium.Color.WHITE,
      fill: Cesium.Color.WHITE.withAlpha(0.4),
      markerColor: Cesium.Color.RED,
    });
    source.name = key;
    legends.set(key, def.style(source));
    await viewer.dataSources.add(source);
    active.set(key, source);
    message.textContent = t("overlays.loaded", { name, count: features.length });
    showLegends();
    viewer.scene.requestRender();
    ctx.onChange?.();
    return "loaded";
  }

  for (const key of Object.keys(DEFS)) {
    const box = document.getElementById(`ov-${key}`);
    box?.addEventListener("change", () => set(key, box.checked));
  }
  indicatorSelect.addEventListener("change", () => {
    if (document.getElementById("ov-choropleth").checked) set("choropleth", true);
  });
  indicatorSelect.addEventListener("focus", loadIndicators);
  levelInput.addEventListener("change", () => {
    if (document.getElementById("ov-flood").checked) set("flood", true);
  });

  return {
    set,
    get active() {
      return [...active.keys()];
    },
    get indicator() {
      return indicatorSelect.value;
    },
    /** Re-label the indicator list after a language switch. */
    relabel: fillIndicators,
    loadIndicators,
    set indicator(code) {
      if (code && ![...indicatorSelect.options].some((o) => o.value === code)) {
        const option = document.createElement("option");
        option.value = code;
        option.textContent = code;
        indicatorSelect.append(option);
      }
      indicatorSelect.value = code || "";
    },
    get level() {
      return Number(levelInput.value);
    },
    set level(value) {
      levelInput.value = String(value);
    },
  };
}

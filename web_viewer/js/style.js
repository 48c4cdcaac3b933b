// Cesium3DTileStyle of the platform tilesets: which features show (layer tree) and their colours (legend).
// Features are told apart by the metadata class of their property table: every class of the tiles' schema
// has a `cim_class` property whose default is the class id and that no table stores (tiles/schema.py), so
// `${cim_class}` names the feature's tile class ("building", "element", "facility", "road", …) whatever
// other properties it has. The classes, their id property and legends come from the registry through
// GET /vocabulary (TILE_CLASSES in vocab.js).

import { BUILDING_USES, SAFETY_CLASSES, TILE_CLASSES } from "./vocab.js";
import { pick, t } from "./i18n.js";

/** The property that names a feature's metadata class. */
export const CLASS_PROPERTY = "cim_class";
const BUILDING = "building";

/** The style condition "the feature is of metadata class `cls`". */
export function isClass(cls) {
  return `\${${CLASS_PROPERTY}} === ${quote(cls)}`;
}

/** Colour of a class's features that its legend does not list. */
const CLASS_FALLBACK_COLOR = { element: "#d8d8d8" };

/**
 * Key of a class in the layer state of layers.js: `bim` for BIM elements, the class's layer name otherwise
 * (`buildings`, `facilities`, `roads`, `parcels`, `zones`, `boundaries`, …).
 */
export function layerStateKey(cls) {
  return cls === "element" ? "bim" : TILE_CLASSES[cls]?.layer ?? cls;
}

/**
 * `[metadata class, layer name]` of every tile class with a layer of its own in the layer tree: all the
 * registered classes but buildings and BIM elements (which have their own rows), in registration order.
 */
export function classLayers() {
  return Object.entries(TILE_CLASSES)
    .filter(([cls]) => cls !== BUILDING && cls !== "element")
    .map(([cls, def]) => [cls, def.layer]);
}

/** Colour ramp of the "by height" mode: [upper bound in metres, CSS colour]. */
export const HEIGHT_CLASSES = [
  [12, "#fff5eb"],
  [24, "#fdd0a2"],
  [50, "#fd8d3c"],
  [100, "#d94801"],
  [Infinity, "#7f2704"],
];

/** Colour of the selected feature. */
export const HIGHLIGHT = "#ffd400";

/**
 * The style condition that is true for the selected feature only: `{kind, id}` with kind a metadata class
 * (its id property from TILE_CLASSES: building_id, global_id, facility_id…). INT64 ids are BigInt in
 * CesiumJS, so they are compared as strings.
 */
export function highlightCondition(highlight) {
  if (!highlight || highlight.id === undefined || highlight.id === null) return null;
  const cls = TILE_CLASSES[highlight.kind];
  if (!cls) return null;
  return `${isClass(highlight.kind)} && String(\${${cls.id_property}}) === ${quote(highlight.id)}`;
}

/** The white model's colour (see colorConditions). */
export const WHITE_MODEL = "#f7f7f5";

function quote(value) {
  return `'${String(value).replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

function color(css) {
  return `color(${quote(css)})`;
}

/**
 * The show expression for the layer state `{buildings, bim, facilities, hiddenKinds: Set, <layer>: bool}`:
 * each tile class shows when its key (layerStateKey) is not false; facility kinds in `hiddenKinds` are
 * hidden (among facilities and roads). Classes the state does not name show.
 * @returns {string}
 */
export function showExpression(layers) {
  const hidden = layers.hiddenKinds ? [...layers.hiddenKinds] : [];
  const hiddenKinds = hidden.map((k) => `\${kind} === ${quote(k)}`).join(" || ");
  let expression = layers[layerStateKey(BUILDING)] === false ? "false" : "true";
  for (const cls of Object.keys(TILE_CLASSES).reverse()) {
    if (cls === BUILDING) continue;
    let shown = layers[layerStateKey(cls)] === false ? "false" : "true";
    if (shown === "true" && hiddenKinds && TILE_CLASSES[cls].legend_property === "kind") shown = `!(${hiddenKinds})`;
    expression = `(${isClass(cls)}) ? (${shown}) : (${expression})`;
  }
  return expression;
}

/**
 * The colour conditions for a building colouring mode ("white" | "use" | "safety" | "height").
 * @returns {Array<[string, string]>}
 */
export function colorConditions(mode, highlight = null) {
  const conditions = [];
  const selected = highlightCondition(highlight);
  if (selected) conditions.push([selected, color(HIGHLIGHT)]);
  for (const [cls, def] of Object.entries(TILE_CLASSES)) {
    if (cls === BUILDING) continue; // buildings: the colouring mode below
    for (const entry of def.legend) {
      const when = entry.value === "" ? isClass(cls) : `${isClass(cls)} && \${${def.legend_property}} === ${quote(entry.value)}`;
      conditions.push([when, color(entry.color)]);
    }
    conditions.push([isClass(cls), color(CLASS_FALLBACK_COLOR[cls] ?? "#999999")]);
  }
  if (mode === "use") {
    for (const [use, entry] of Object.entries(BUILDING_USES)) {
      conditions.push([`\${use} === ${quote(use)}`, color(entry[2])]);
    }
  } else if (mode === "safety") {
    for (const [cls, entry] of Object.entries(SAFETY_CLASSES)) {
      conditions.push([`\${safety_class} === ${quote(cls)}`, color(entry[2])]);
    }
    conditions.push(["true", color("#dddddd")]);
  } else if (mode === "height") {
    for (const [upper, css] of HEIGHT_CLASSES) {
      if (Number.isFinite(upper)) conditions.push([`\${height} < ${upper}`, color(css)]);
      else conditions.push(["true", color(css)]);
    }
  }
  // Not pure white: CesiumJS treats a pure-white style colour as "no style" and would show the colours baked
  // into the glTF instead.
  conditions.push(["true", color(WHITE_MODEL)]);
  return conditions;
}

/** A Cesium3DTileStyle for the given layer state and colouring mode. */
export function tileStyle(Cesium, layers, mode) {
  return new Cesium.Cesium3DTileStyle({
    show: showExpression(layers),
    color: { conditions: colorConditions(mode, layers.highlight) },
  });
}

/** Legend entries `[[label, css], …]` of a colouring mode in the current language. */
export function legendEntries(mode) {
  if (mode === "use") return Object.values(BUILDING_USES).map((e) => [pick(e), e[2]]);
  if (mode === "safety") {
    return [...Object.values(SAFETY_CLASSES).map((e) => [pick(e), e[2]]), [t("legend.noClass"), "#dddddd"]];
  }
  if (mode === "height") {
    let lower = 0;
    return HEIGHT_CLASSES.map(([upper, css]) => {
      const label = Number.isFinite(upper) ? `${lower}–${upper} m` : `≥ ${lower} m`;
      lower = upper;
      return [label, css];
    });
  }
  return [[t("style.white"), "#ffffff"]];
}

/** Legend entries `[[label, css], …]` of a tile class (metadata class id) in the current language. */
export function classLegendEntries(cls) {
  const def = TILE_CLASSES[cls];
  if (!def) return [];
  return def.legend.map((e) => [e.value === "" ? pick([def.zh, def.title]) : pick([e.zh, e.en]), e.color]);
}

/** The name of a tile class (metadata class id) in the current language. */
export function className(cls) {
  const def = TILE_CLASSES[cls];
  return def ? pick([def.zh, def.title]) : cls;
}

/** Render legend entries into a container element. */
export function renderLegend(container, entries) {
  container.replaceChildren(
    ...entries.map(([label, css]) => {
      const item = document.createElement("div");
      item.className = "item";
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = css;
      const text = document.createElement("span");
      text.textContent = label;
      item.append(swatch, text);
      return item;
    }),
  );
}

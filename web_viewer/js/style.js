// Cesium3DTileStyle of the platform tilesets: which features show (layer tree) and their colours (legend).
// Features are told apart by the metadata class of their property table: every class of the tiles' schema
// has a `cim_class` property whose default is the class id and that no table stores (tiles/schema.py), so
// `${cim_class}` is "building", "element" or "facility" whatever other properties a feature has.

import { BUILDING_USES, FACILITY_KINDS, IFC_CLASS_COLORS, SAFETY_CLASSES } from "./vocab.js";
import { pick, t } from "./i18n.js";

/** The property that names a feature's metadata class. */
export const CLASS_PROPERTY = "cim_class";
const IS_ELEMENT = `\${${CLASS_PROPERTY}} === 'element'`;
const IS_FACILITY = `\${${CLASS_PROPERTY}} === 'facility'`;
const IS_BUILDING = `\${${CLASS_PROPERTY}} === 'building'`;

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
 * The style condition that is true for the selected feature only: `{kind, id}` with kind "building"
 * (building_id), "element" (global_id) or "facility" (facility_id). INT64 ids are BigInt in CesiumJS, so
 * they are compared as strings.
 */
export function highlightCondition(highlight) {
  if (!highlight || highlight.id === undefined || highlight.id === null) return null;
  if (highlight.kind === "element") return `\${global_id} === ${quote(highlight.id)}`;
  if (highlight.kind === "facility") return `String(\${facility_id}) === ${quote(highlight.id)}`;
  if (highlight.kind === "building") return `${IS_BUILDING} && String(\${building_id}) === ${quote(highlight.id)}`;
  return null;
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
 * The show expression for the layer state `{buildings, bim, facilities, hiddenKinds: Set}`.
 * @returns {string}
 */
export function showExpression(layers) {
  let facility = layers.facilities ? "true" : "false";
  if (layers.facilities && layers.hiddenKinds.size > 0) {
    const hidden = [...layers.hiddenKinds].map((k) => `\${kind} === ${quote(k)}`).join(" || ");
    facility = `!(${hidden})`;
  }
  return `(${IS_ELEMENT}) ? ${layers.bim ? "true" : "false"} : ((${IS_FACILITY}) ? (${facility}) : ${
    layers.buildings ? "true" : "false"
  })`;
}

/**
 * The colour conditions for a building colouring mode ("white" | "use" | "safety" | "height").
 * @returns {Array<[string, string]>}
 */
export function colorConditions(mode, highlight = null) {
  const conditions = [];
  const selected = highlightCondition(highlight);
  if (selected) conditions.push([selected, color(HIGHLIGHT)]);
  for (const [cls, css] of Object.entries(IFC_CLASS_COLORS)) {
    conditions.push([`${IS_ELEMENT} && \${ifc_class} === ${quote(cls)}`, color(css)]);
  }
  conditions.push([IS_ELEMENT, color("#d8d8d8")]);
  for (const [kind, entry] of Object.entries(FACILITY_KINDS)) {
    conditions.push([`${IS_FACILITY} && \${kind} === ${quote(kind)}`, color(entry[2])]);
  }
  conditions.push([IS_FACILITY, color("#999999")]);
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

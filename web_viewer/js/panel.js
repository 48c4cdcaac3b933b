// Click a feature of any tile class (building, element, facility, road, parcel, zone, district…) → side
// panel with its attributes (tile metadata first, then for buildings and elements the API: /buildings/{id}
// or /elements/{guid}), and highlight it (silhouette + colour). A building's attributes come from the API in
// the end whichever way it was reached (a click on the map or a search result), so the panel is the same.

import { getJson } from "./api.js";
import { showArchive } from "./archive.js";
import { pick, t } from "./i18n.js";
import { CLASS_PROPERTY, HIGHLIGHT, className } from "./style.js";
import { BUILDING_USES, FACILITY_KINDS, SAFETY_CLASSES, TILE_CLASSES } from "./vocab.js";
import { elements } from "./dom.js";

/**
 * The building attributes of the panel's main table, in order, from GET /buildings/{id} (the tiles carry a
 * subset, shown until the API answers); DETAIL_KEYS go to the details below it.
 */
export const BUILDING_KEYS = ["name", "use", "height", "storeys", "structure", "year_built", "safety_class", "cim_level"];
const DETAIL_KEYS = ["address", "base_height", "gross_floor_area", "district_code"];

/** Plain JS value of a metadata property (INT64 comes back as BigInt). */
function plain(value) {
  if (typeof value === "bigint") return Number(value);
  return value;
}

/** Properties of a picked 3D Tiles feature as a plain object (without the class, see featureKind). */
export function featureProperties(feature) {
  const props = {};
  for (const id of feature.getPropertyIds()) {
    if (id !== CLASS_PROPERTY) props[id] = plain(feature.getProperty(id));
  }
  return props;
}

/**
 * The metadata class of the feature's property table ("building", "element", "facility", "road", …): the
 * `cim_class` property, whose default in the tiles' schema is the class id (tiles/schema.py).
 */
export function featureKind(feature) {
  const kind = feature.getProperty(CLASS_PROPERTY);
  return typeof kind === "string" && TILE_CLASSES[kind] ? kind : "building";
}

/** The feature id of a selection (its class's id property: building_id, global_id, facility_id…). */
export function selectionId(kind, props) {
  const cls = TILE_CLASSES[kind];
  return cls ? props[cls.id_property] : undefined;
}

function legendLabel(kind, key, value) {
  const cls = TILE_CLASSES[kind];
  if (!cls || cls.legend_property !== key) return null;
  const entry = cls.legend.find((e) => e.value === value);
  return entry ? pick([entry.zh, entry.en]) : null;
}

function displayValue(key, value, kind) {
  if (value === null || value === undefined || value === "") return "–";
  if (key === "use" && BUILDING_USES[value]) return pick(BUILDING_USES[value]);
  if (key === "safety_class" && SAFETY_CLASSES[value]) return pick(SAFETY_CLASSES[value]);
  if (key === "kind" && FACILITY_KINDS[value]) return pick(FACILITY_KINDS[value]);
  const legend = legendLabel(kind, key, value);
  if (legend) return legend;
  if (typeof value === "number" && !Number.isInteger(value)) return value.toFixed(2);
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function label(key) {
  const translated = t(`prop.${key}`);
  return translated === `prop.${key}` ? key : translated;
}

/**
 * Create the panel controller.
 * @param {object} ctx {Cesium, viewer, onSelect(selection)}
 */
export function createPanel(ctx) {
  const { Cesium, viewer } = ctx;
  const scene = viewer.scene;
  const [panel, title, kindLine, table, details] = elements("panel", "panel-title", "panel-kind", "panel-props", "panel-details");
  let selected = null; // {feature?, kind, props, position?, name?}
  let silhouette = null;
  let lastShown = null;
  let requestSeq = 0;

  if (Cesium.PostProcessStageLibrary.isSilhouetteSupported(scene)) {
    silhouette = Cesium.PostProcessStageLibrary.createEdgeDetectionStage();
    silhouette.uniforms.color = Cesium.Color.fromCssColorString(HIGHLIGHT);
    silhouette.uniforms.length = 0.01;
    silhouette.selected = [];
    scene.postProcessStages.add(Cesium.PostProcessStageLibrary.createSilhouetteStage([silhouette]));
  }

  function rows(props, kind, skip = new Set()) {
    const out = [];
    for (const [key, value] of Object.entries(props)) {
      if (skip.has(key)) continue;
      const tr = document.createElement("tr");
      const k = document.createElement("td");
      k.textContent = label(key);
      const v = document.createElement("td");
      v.textContent = displayValue(key, value, kind);
      tr.append(k, v);
      out.push(tr);
    }
    return out;
  }

  function unhighlight() {
    ctx.layers?.setHighlight(null);
    if (silhouette) silhouette.selected = [];
  }

  function highlight(selection) {
    const { kind, props } = selection;
    const id = selectionId(kind, props);
    if (id !== undefined && id !== null) ctx.layers?.setHighlight({ kind, id: String(id) });
    if (silhouette && selection.feature) silhouette.selected = [selection.feature];
  }

  async function loadDetails(kind, props, seq) {
    details.replaceChildren();
    let path = null;
    if (kind === "building" && props.building_id !== undefined) path = `/buildings/${props.building_id}`;
    if (kind === "element" && props.global_id) path = `/elements/${encodeURIComponent(props.global_id)}`;
    if (!path) return;
    const result = await getJson(path);
    if (seq !== requestSeq) return;
    const heading = document.createElement("h4");
    heading.textContent = t("panel.details");
    if (!result.ok || !result.data) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = t("panel.notFound");
      details.replaceChildren(heading, p);
      return;
    }
    const data = result.data;
    if (data.name && !title.textContent) title.textContent = data.name;
    const extra = {};
    if (kind === "building") {
      // The same table whichever way the building was reached: the API's attributes, in BUILDING_KEYS order.
      const full = { building_id: props.building_id };
      for (const key of BUILDING_KEYS) full[key] = key in data ? data[key] : props[key];
      if (lastShown && lastShown.props === props) {
        lastShown.props = full;
        render();
      }
      for (const key of DETAIL_KEYS) if (key in data) extra[key] = data[key];
      if (data.elements) extra.elements = data.elements.count;
      if (Array.isArray(data.datasets)) extra.datasets = data.datasets.map((d) => d.name).join(", ");
      for (const [key, value] of Object.entries(data.attributes || {})) extra[key] = value;
    } else {
      for (const key of ["type_name", "material", "storey"]) if (key in data && !(key in props)) extra[key] = data[key];
      for (const [pset, values] of Object.entries(data.properties || {})) {
        if (values && typeof values === "object") {
          for (const [key, value] of Object.entries(values)) extra[`${pset}.${key}`] = value;
        } else {
          extra[pset] = values;
        }
      }
    }
    const extraTable = document.createElement("table");
    extraTable.id = "panel-details-props";
    extraTable.append(...rows(extra, kind));
    details.replaceChildren(heading, extraTable);
    if (kind === "building") showArchive(details, props.building_id, () => seq === requestSeq);
  }

  function render() {
    if (!lastShown) return;
    const { kind, props, name } = lastShown;
    title.textContent = name || props.name || (props.building_id !== undefined ? `#${props.building_id}` : "");
    const key = `panel.${kind}`;
    kindLine.textContent = t(key) === key ? className(kind) : t(key);
    table.replaceChildren(...rows(props, kind));
  }

  /** Show a selection: {kind, props, feature?, position?, name?}. */
  function show(selection) {
    unhighlight();
    selected = selection;
    highlight(selection);
    lastShown = selection;
    panel.hidden = false;
    render();
    requestSeq += 1;
    loadDetails(selection.kind, selection.props, requestSeq);
    ctx.onSelect?.(selection);
    scene.requestRender();
  }

  function close() {
    unhighlight();
    selected = null;
    lastShown = null;
    panel.hidden = true;
    ctx.onSelect?.(null);
    scene.requestRender();
  }

  document.getElementById("panel-close").addEventListener("click", close);

  /** Handle a left click at a window position; returns true when something was picked. */
  function pickAt(position) {
    const picked = scene.pick(position);
    if (picked instanceof Cesium.Cesium3DTileFeature) {
      const props = featureProperties(picked);
      let worldPosition;
      if (scene.pickPositionSupported) worldPosition = scene.pickPosition(position);
      show({ kind: featureKind(picked), props, feature: picked, position: worldPosition });
      return true;
    }
    if (picked && picked.id instanceof Cesium.Entity) {
      const entity = picked.id;
      const props = entity.properties ? entity.properties.getValue(viewer.clock.currentTime) : {};
      show({ kind: "overlay", props, name: entity.name || props.name });
      return true;
    }
    close();
    return false;
  }

  return {
    show,
    close,
    pickAt,
    render,
    get selection() {
      return selected;
    },
  };
}

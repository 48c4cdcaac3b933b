// The layer tree: buildings, BIM models, then every tile content class of the registry (GET /vocabulary:
// facilities, areas, roads, parcels, zones, boundaries and any plug-in class) with its legend (each kind
// toggleable when the class's legend is by kind), terrain, base map and each tileset, all toggleable; the
// building colouring mode with its legend. State changes call `onChange`.

import { TILE_CLASSES } from "./vocab.js";
import { pick, t } from "./i18n.js";
import { classLayers, legendEntries, renderLegend, tileStyle } from "./style.js";

/** Layer-tree labels of the classes that have their own translation key (others: the class's name). */
const CLASS_LABEL_KEYS = { facilities: "layers.facilities" };

/**
 * Create the layer controller.
 * @param {object} ctx {Cesium, viewer, tilesets: Map<name, tileset>, terrainProvider, flatTerrain (the globe without
 *   terrain), imageryLayer, onChange}
 */
export function createLayers(ctx) {
  const { Cesium, viewer } = ctx;
  const state = {
    buildings: true,
    bim: true,
    ...Object.fromEntries(classLayers().map(([, layer]) => [layer, true])),
    terrain: Boolean(ctx.terrainProvider),
    imagery: true,
    hiddenKinds: new Set(),
    hiddenTilesets: new Set(),
    mode: "use", // default colouring by use, with its legend
    highlight: null, // {kind, id} of the selected feature, coloured by the style
  };
  const tree = document.getElementById("layer-tree");
  const modeSelect = document.getElementById("style-mode");
  const legend = document.getElementById("legend");
  const ellipsoid = ctx.flatTerrain;

  function checkbox(id, checked, labelKey, labelText, onToggle, disabled = false) {
    const li = document.createElement("li");
    const label = document.createElement("label");
    label.className = "row";
    const input = document.createElement("input");
    input.type = "checkbox";
    input.id = id;
    input.checked = checked;
    input.disabled = disabled;
    input.addEventListener("change", () => onToggle(input.checked));
    const span = document.createElement("span");
    if (labelKey) span.dataset.i18n = labelKey;
    span.textContent = labelKey ? t(labelKey) : labelText;
    label.append(input, span);
    li.append(label);
    return li;
  }

  /**
   * The legend of a tile class from the vocabulary (a list of class "class-legend", data-class = metadata
   * class, folded in a <details> when it has more than one entry); a legend by kind has one checkbox per kind
   * (hiddenKinds).
   */
  function classLegend(cls) {
    const def = TILE_CLASSES[cls];
    const list = document.createElement("ul");
    list.className = "legend class-legend";
    list.dataset.class = cls;
    for (const entry of def.legend) {
      const text = entry.value === "" ? pick([def.zh, def.title]) : pick([entry.zh, entry.en]);
      let item;
      if (def.legend_property === "kind" && entry.value !== "") {
        item = checkbox(`layer-kind-${entry.value}`, !state.hiddenKinds.has(entry.value), null, text, (on) => {
          if (on) state.hiddenKinds.delete(entry.value);
          else state.hiddenKinds.add(entry.value);
          changed();
        });
      } else {
        item = document.createElement("li");
        item.append(Object.assign(document.createElement("span"), { textContent: text }));
      }
      item.classList.add("item");
      item.dataset.value = entry.value;
      const swatch = document.createElement("span");
      swatch.className = "swatch inline";
      swatch.style.background = entry.color;
      const host = item.querySelector("label") ?? item;
      host.insertBefore(swatch, host.querySelector("span"));
      list.append(item);
    }
    if (def.legend.length <= 1) return list;
    // A longer legend folds away (open it to toggle single kinds).
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = t("layers.kinds");
    details.append(summary, list);
    return details;
  }

  /** A tile class in the tree: its checkbox (state key = its layer name), then its legend. */
  function classEntry(cls, layer) {
    const def = TILE_CLASSES[cls];
    const labelKey = CLASS_LABEL_KEYS[layer] ?? null;
    const li = checkbox(`layer-${layer}`, state[layer] !== false, labelKey, pick([def.zh, def.title]), (on) => {
      state[layer] = on;
      changed();
    });
    li.dataset.class = cls;
    li.append(classLegend(cls));
    return li;
  }

  function applyStyle() {
    for (const tileset of ctx.tilesets.values()) {
      tileset.style = tileStyle(Cesium, state, state.mode);
    }
    renderLegend(legend, legendEntries(state.mode));
    viewer.scene.requestRender();
  }

  function applyVisibility() {
    // The province overview (above city height) and a past moment of the time slider replace the 3D content.
    const hide3d = Boolean(ctx.suppress3d || ctx.historyHides3d);
    for (const [name, tileset] of ctx.tilesets) tileset.show = !hide3d && !state.hiddenTilesets.has(name);
    if (ctx.imageryLayer) ctx.imageryLayer.show = state.imagery;
    const wantTerrain = state.terrain && ctx.terrainProvider;
    const target = wantTerrain ? ctx.terrainProvider : ellipsoid;
    if (viewer.terrainProvider !== target) viewer.terrainProvider = target;
    viewer.scene.requestRender();
  }

  function changed() {
    applyStyle();
    applyVisibility();
    ctx.onChange?.();
  }

  function build() {
    tree.replaceChildren();
    tree.append(
      checkbox("layer-buildings", state.buildings, "layers.buildings", null, (on) => {
        state.buildings = on;
        changed();
      }),
      checkbox("layer-bim", state.bim, "layers.bim", null, (on) => {
        state.bim = on;
        changed();
      }),
    );
    if (TILE_CLASSES.element) tree.lastElementChild.append(classLegend("element"));
    for (const [cls, layer] of classLayers()) tree.append(classEntry(cls, layer));
    tree.append(
      checkbox("layer-terrain", state.terrain, "layers.terrain", null, (on) => {
        state.terrain = on;
        changed();
      }, !ctx.terrainProvider),
      checkbox("layer-imagery", state.imagery, "layers.imagery", null, (on) => {
        state.imagery = on;
        changed();
      }),
    );
    for (const name of ctx.tilesets.keys()) {
      tree.append(
        checkbox(`layer-tileset-${name}`, !state.hiddenTilesets.has(name), null, `▣ ${name}`, (on) => {
          if (on) state.hiddenTilesets.delete(name);
          else state.hiddenTilesets.add(name);
          changed();
        }),
      );
    }
  }

  modeSelect.addEventListener("change", () => {
    state.mode = modeSelect.value;
    changed();
  });

  return {
    state,
    applyVisibility,
    /** Rebuild the tree (after a language switch or new tilesets) and apply the state. */
    refresh() {
      modeSelect.value = state.mode;
      build();
      applyStyle();
      applyVisibility();
    },
    /** Restore a state saved in the URL (see share.js). */
    restore(saved) {
      if (!saved) return;
      for (const key of ["buildings", "bim", ...classLayers().map(([, layer]) => layer), "terrain", "imagery"]) {
        if (key in saved) state[key] = saved[key];
      }
      if (!ctx.terrainProvider) state.terrain = false;
      if (saved.hiddenKinds) state.hiddenKinds = new Set(saved.hiddenKinds);
      if (saved.hiddenTilesets) state.hiddenTilesets = new Set(saved.hiddenTilesets);
      if (saved.mode) state.mode = saved.mode;
    },
    /** Colour the selected feature ({kind, id}) or nobody (null). */
    setHighlight(highlight) {
      state.highlight = highlight;
      applyStyle();
    },
    /** Set the building colouring mode ("white" | "use" | "safety" | "height"). */
    setMode(mode) {
      state.mode = mode;
      modeSelect.value = mode;
      changed();
    },
  };
}

// The layer tree: buildings, BIM models, each facility kind, terrain, base map and each tileset,
// each toggleable; the building colouring mode with its legend. State changes call `onChange`.

import { FACILITY_KINDS } from "./vocab.js";
import { pick, t } from "./i18n.js";
import { legendEntries, renderLegend, tileStyle } from "./style.js";

/**
 * Create the layer controller.
 * @param {object} ctx {Cesium, viewer, tilesets: Map<name, tileset>, terrainProvider, imageryLayer, onChange}
 */
export function createLayers(ctx) {
  const { Cesium, viewer } = ctx;
  const state = {
    buildings: true,
    bim: true,
    facilities: true,
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
  const ellipsoid = new Cesium.EllipsoidTerrainProvider();

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
    const facilities = checkbox("layer-facilities", state.facilities, "layers.facilities", null, (on) => {
      state.facilities = on;
      changed();
    });
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = t("layers.kinds");
    const kinds = document.createElement("ul");
    for (const [kind, entry] of Object.entries(FACILITY_KINDS)) {
      const li = checkbox(`layer-kind-${kind}`, !state.hiddenKinds.has(kind), null, pick(entry), (on) => {
        if (on) state.hiddenKinds.delete(kind);
        else state.hiddenKinds.add(kind);
        changed();
      });
      const swatch = document.createElement("span");
      swatch.className = "swatch inline";
      swatch.style.background = entry[2];
      li.querySelector("label").insertBefore(swatch, li.querySelector("span"));
      kinds.append(li);
    }
    details.append(summary, kinds);
    facilities.append(details);
    tree.append(
      facilities,
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
      for (const key of ["buildings", "bim", "facilities", "terrain", "imagery"]) {
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

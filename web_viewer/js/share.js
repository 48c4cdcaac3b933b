// Shareable URL: the camera, layers, colouring mode, overlays, tools and language live in the hash, e.g.
// #cam=114.30500,30.58500,800,0,-35,0&layers=buildings,bim,facilities,terrain,imagery&mode=safety&lang=en
// cam = longitude, latitude (degrees), height (m, ellipsoidal), heading, pitch, roll (degrees).

import { classLayers } from "./style.js";

/** The layer keys of the hash: buildings, BIM, every tile class's layer (facilities, areas, roads…), terrain, base map. */
const LAYER_KEYS = ["buildings", "bim", ...classLayers().map(([, layer]) => layer), "terrain", "imagery"];

/** Parse a location hash into a plain state object (unknown or malformed parts are ignored). */
export function parseHash(hash = window.location.hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const state = {};
  const cam = params.get("cam")?.split(",").map(Number);
  if (cam && cam.length === 6 && cam.every(Number.isFinite)) {
    const [lon, lat, height, heading, pitch, roll] = cam;
    state.camera = { lon, lat, height, heading, pitch, roll };
  }
  if (params.has("layers")) {
    const on = new Set(params.get("layers").split(",").filter(Boolean));
    state.layers = Object.fromEntries(LAYER_KEYS.map((k) => [k, on.has(k)]));
  }
  const list = (name) => (params.get(name) || "").split(",").filter(Boolean);
  if (params.has("hide")) (state.layers ??= {}).hiddenKinds = list("hide");
  if (params.has("hidets")) (state.layers ??= {}).hiddenTilesets = list("hidets");
  if (params.has("mode")) (state.layers ??= {}).mode = params.get("mode");
  if (params.has("ov")) state.overlays = list("ov");
  if (params.has("ind")) state.indicator = params.get("ind");
  if (params.has("level") && Number.isFinite(Number(params.get("level")))) state.level = Number(params.get("level"));
  if (params.has("lang")) state.lang = params.get("lang");
  if (params.has("ug")) state.underground = params.get("ug") === "1";
  if (params.has("sun")) state.sun = params.get("sun");
  if (params.has("overview")) state.overview = params.get("overview") !== "0";
  if (params.has("labels")) state.labels = params.get("labels") !== "0";
  if (params.has("lod")) state.lod = params.get("lod");
  return state;
}

function fixed(value, digits) {
  return Number(value).toFixed(digits).replace(/\.?0+$/, "") || "0";
}

/** Serialise the viewer state into a hash string (without the leading "#"). */
export function buildHash(Cesium, { viewer, layers, overlays, environment, lang }) {
  const params = new URLSearchParams();
  const c = viewer.camera;
  const carto = c.positionCartographic;
  params.set(
    "cam",
    [
      fixed(Cesium.Math.toDegrees(carto.longitude), 6),
      fixed(Cesium.Math.toDegrees(carto.latitude), 6),
      fixed(carto.height, 1),
      fixed(Cesium.Math.toDegrees(c.heading), 1),
      fixed(Cesium.Math.toDegrees(c.pitch), 1),
      fixed(Cesium.Math.toDegrees(c.roll), 1),
    ].join(","),
  );
  const s = layers.state;
  params.set("layers", LAYER_KEYS.filter((k) => s[k]).join(","));
  if (s.hiddenKinds.size) params.set("hide", [...s.hiddenKinds].join(","));
  if (s.hiddenTilesets.size) params.set("hidets", [...s.hiddenTilesets].join(","));
  params.set("mode", s.mode);
  if (overlays.active.length) params.set("ov", overlays.active.join(","));
  if (overlays.indicator) params.set("ind", overlays.indicator);
  if (overlays.active.includes("flood")) params.set("level", String(overlays.level));
  const env = environment.state;
  if (env.underground) params.set("ug", "1");
  if (env.sun) params.set("sun", env.time);
  if (lang !== "zh") params.set("lang", lang);
  if (!document.getElementById("om-overview")?.checked) params.set("overview", "0");
  if (!document.getElementById("om-labels")?.checked) params.set("labels", "0");
  return params.toString().replace(/%2C/g, ",").replace(/%3A/g, ":");
}

/** Apply a parsed camera state immediately. */
export function applyCamera(Cesium, viewer, camera) {
  viewer.camera.setView({
    destination: Cesium.Cartesian3.fromDegrees(camera.lon, camera.lat, camera.height),
    orientation: {
      heading: Cesium.Math.toRadians(camera.heading),
      pitch: Cesium.Math.toRadians(camera.pitch),
      roll: Cesium.Math.toRadians(camera.roll),
    },
  });
}

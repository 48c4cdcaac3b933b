// Boot of the CIM viewer: configuration, globe (offline imagery, platform terrain), tilesets from
// /tilesets, the UI controllers, the status line and the test hook `window.cimViewer`.

import { apiUrl, getJson, setApiBase } from "./api.js";
import { applyTranslations, currentLang, onLangChange, setLang, t } from "./i18n.js";
import { createLayers } from "./layers.js";
import { createPanel } from "./panel.js";
import { createSearch } from "./search.js";
import { createMeasure } from "./measure.js";
import { createClipping } from "./clipping.js";
import { createEnvironment } from "./environment.js";
import { createOverlays } from "./overlays.js";
import { applyCamera, buildHash, parseHash } from "./share.js";
import { createOverview, loadOverview } from "./overview.js";
import { createLabels } from "./labels.js";
import { createBasemap } from "./basemap.js";
import { createCompare } from "./compare.js";
import { hook, markAllTilesLoaded, markReady } from "./hook.js";
import { createViewer, flatTerrain } from "./cesium.js";

const Cesium = window.Cesium;
/**
 * Screen-space error of the globe's tiles (Cesium's default is 2). A street view looks over kilometres of
 * ground towards the horizon, and every globe tile there brings its imagery tiles (the offline base map is
 * rasterised by the platform on request): at 3 the globe asks for about half as many tiles, and the ground
 * it draws is flat colour, terrain that the 3D content stands on, or both.
 */
const GLOBE_SCREEN_SPACE_ERROR = 3;

/**
 * How the 3D tiles and the globe stream. CesiumJS's defaults load every level of detail on the way down: for
 * a REPLACE tile tree its base traversal loads each ancestor of the tiles it draws and all four children of
 * every tile it refines, seen or not (a tile refines only once all its children are in), and the globe
 * preloads the ancestors of the tiles it draws. On the 1,000,000-building province a street view at 450 m
 * drew 10 tiles and fetched 86 (43 MB), whose decoding and drawing in software WebGL slowed every frame of
 * the globe's own descent. Skipping levels of detail loads the tiles a view draws (and, with
 * `immediatelyLoadDesiredLevelOfDetail`, nothing between them and the root): a building in view is still
 * drawn from its leaf, as before. `#lod=levels` restores the defaults (the benchmark's "before").
 */
const STREAMING = {
  tileset: { skipLevelOfDetail: true, immediatelyLoadDesiredLevelOfDetail: true },
  globe: { preloadAncestors: false, loadingDescendantLimit: 200 },
};


/** Subdomains of an imagery URL template's {s}: Tianditu uses t0–t7, most others a, b, c. */
function subdomainsOf(imagery) {
  if (imagery.subdomains) return imagery.subdomains;
  return /tianditu/i.test(imagery.url) ? "01234567" : "abc";
}

/** An imagery provider promise for the configured base map (offline Natural Earth II by default). */
function imageryProvider(imagery) {
  const type = imagery?.type ?? "natural-earth";
  if (type === "xyz" && imagery.url) {
    return Promise.resolve(
      new Cesium.UrlTemplateImageryProvider({
        url: imagery.url,
        subdomains: subdomainsOf(imagery),
        maximumLevel: imagery.maximum_level ?? 18,
        tilingScheme: imagery.tiling === "geographic" ? new Cesium.GeographicTilingScheme() : undefined,
        credit: imagery.credit ?? "",
      }),
    );
  }
  if (type === "wmts" && imagery.url) {
    return Promise.resolve(
      new Cesium.WebMapTileServiceImageryProvider({
        url: imagery.url,
        layer: imagery.layer ?? "",
        style: imagery.style ?? "default",
        format: imagery.format ?? "tiles",
        tileMatrixSetID: imagery.tile_matrix_set ?? "w",
        subdomains: subdomainsOf(imagery),
        maximumLevel: imagery.maximum_level ?? 18,
        tilingScheme: imagery.tiling === "geographic" ? new Cesium.GeographicTilingScheme() : undefined,
        credit: imagery.credit ?? "",
      }),
    );
  }
  return Cesium.TileMapServiceImageryProvider.fromUrl(Cesium.buildModuleUrl("Assets/Textures/NaturalEarthII"));
}

/**
 * Bounds of all tilesets and of everything stored (the /overview bbox):
 * {center: Cartographic, minHeight, maxHeight, rectangle} or null.
 */
function tilesetBounds(infos, stored) {
  const withBounds = infos.filter((i) => Array.isArray(i.bounds) && i.bounds.length === 4);
  if (Array.isArray(stored) && stored.length === 4) withBounds.push({ bounds: stored, min_height: 0, max_height: 100 });
  if (withBounds.length === 0) return null;
  const w = Math.min(...withBounds.map((i) => i.bounds[0]));
  const s = Math.min(...withBounds.map((i) => i.bounds[1]));
  const e = Math.max(...withBounds.map((i) => i.bounds[2]));
  const n = Math.max(...withBounds.map((i) => i.bounds[3]));
  const minHeight = Math.min(...withBounds.map((i) => i.min_height ?? 0));
  const maxHeight = Math.max(...withBounds.map((i) => i.max_height ?? 100));
  return {
    rectangle: Cesium.Rectangle.fromDegrees(w, s, e, n),
    center: Cesium.Cartographic.fromDegrees((w + e) / 2, (s + n) / 2, 0),
    minHeight,
    maxHeight,
  };
}

/** A perspective overview of the bounds, looking north. */
function overview(viewer, bounds) {
  const rect = bounds.rectangle;
  const diag = Cesium.Cartesian3.distance(
    Cesium.Cartesian3.fromRadians(rect.west, rect.south),
    Cesium.Cartesian3.fromRadians(rect.east, rect.north),
  );
  const center = Cesium.Cartesian3.fromRadians(bounds.center.longitude, bounds.center.latitude, (bounds.minHeight + bounds.maxHeight) / 2);
  // A province (tens of kilometres and more) is seen from higher up and more steeply than a city.
  const wide = diag > 50_000;
  const range = wide ? diag * 1.4 : Math.max(diag * 1.6, 400);
  viewer.camera.flyToBoundingSphere(new Cesium.BoundingSphere(center, Math.max(diag / 2, 100)), {
    offset: new Cesium.HeadingPitchRange(0, Cesium.Math.toRadians(wide ? -65 : -40), range),
    duration: 0,
  });
  // Centre the city in the part of the canvas the sidebar leaves free.
  const sidebar = document.getElementById("sidebar").getBoundingClientRect();
  const width = viewer.canvas.clientWidth;
  const fov = viewer.camera.frustum.fov;
  if (width > 0 && sidebar.right > 0 && sidebar.right < width / 2 && fov) {
    viewer.camera.moveLeft(((sidebar.right / 2) / width) * 2 * range * Math.tan(fov / 2));
  }
}

function createStatus(viewer) {
  const tiles = document.getElementById("status-tiles");
  const fps = document.getElementById("status-fps");
  const pos = document.getElementById("status-pos");
  const loading = document.getElementById("loading");
  let frames = 0;
  let pending = 0;
  let processing = 0;
  viewer.scene.postRender.addEventListener(() => {
    frames += 1;
  });
  setInterval(() => {
    fps.textContent = t("status.fps", { fps: frames });
    hook.fps = frames;
    frames = 0;
  }, 1000);
  const handler = new Cesium.ScreenSpaceEventHandler(viewer.canvas);
  handler.setInputAction((event) => {
    const c = viewer.camera.pickEllipsoid(event.endPosition, viewer.scene.globe.ellipsoid);
    if (!c) return;
    const carto = Cesium.Cartographic.fromCartesian(c);
    pos.textContent = `${Cesium.Math.toDegrees(carto.longitude).toFixed(5)}°E ${Cesium.Math.toDegrees(carto.latitude).toFixed(5)}°N`;
  }, Cesium.ScreenSpaceEventType.MOUSE_MOVE);
  return {
    progress(p, q) {
      pending = p;
      processing = q;
      this.render();
    },
    render() {
      if (hook.tilesets.size === 0 && hook.tilesetInfo.length === 0) tiles.textContent = t("status.noTilesets");
      else if (pending + processing === 0) tiles.textContent = t("status.loaded");
      else tiles.textContent = t("status.tiles", { pending, processing });
    },
    done() {
      loading.classList.add("done");
    },
  };
}

async function main() {
  const saved = parseHash();
  setLang(saved.lang ?? localStorage.getItem("cim.lang") ?? "zh");
  const configResult = await getJson("/viewer/config.json");
  const config = configResult.ok && configResult.data ? configResult.data : { imagery: { type: "natural-earth" }, api: "" };
  setApiBase(config.api ?? "");

  const viewer = createViewer("cesiumContainer", {
    baseLayer: false,
    terrainProvider: flatTerrain(),
    maximumRenderTimeChange: Number.POSITIVE_INFINITY,
    msaaSamples: 1,
  });
  hook.viewer = viewer;
  viewer.clock.shouldAnimate = false;
  // A fixed, reproducible light: noon (Beijing time) at the June solstice until the sun tool sets a time.
  viewer.clock.currentTime = Cesium.JulianDate.fromIso8601(`${new Date().getFullYear()}-06-21T04:00:00Z`);
  viewer.scene.globe.depthTestAgainstTerrain = true;
  viewer.scene.globe.baseColor = Cesium.Color.fromCssColorString("#2b3a4a");
  viewer.scene.globe.maximumScreenSpaceError = GLOBE_SCREEN_SPACE_ERROR;
  const levels = saved.lod === "levels";
  if (!levels) Object.assign(viewer.scene.globe, STREAMING.globe);
  viewer.scene.postRender.addEventListener(function first() {
    hook.timings.firstFrame = performance.now();
    performance.mark("cim-first-frame");
    viewer.scene.postRender.removeEventListener(first);
  });
  viewer.scene.renderError.addEventListener((_, error) => hook.errors.push(String(error)));
  // Where a first view's time goes (the benchmark prints it): the last moment the globe's and the 3D tiles'
  // load queues emptied, and when the overview answered.
  viewer.scene.globe.tileLoadProgressEvent.addEventListener((queued) => {
    if (queued === 0) hook.timings.globeLoaded = performance.now();
  });

  const imageryLayer = Cesium.ImageryLayer.fromProviderAsync(imageryProvider(config.imagery));
  viewer.imageryLayers.add(imageryLayer);
  // The overview's city counts can take the server seconds (a spatial join over every building, once per
  // data change): the camera of a link, the globe and the tilesets' trees start meanwhile.
  const overviewLoaded = loadOverview().then((data) => {
    hook.timings.overview = performance.now();
    return data;
  });
  const listResult = await getJson("/tilesets");

  const status = createStatus(viewer);
  const infos = listResult.ok && Array.isArray(listResult.data) ? listResult.data : [];
  hook.tilesetInfo = infos;
  const ctx = { Cesium, viewer, tilesets: hook.tilesets, terrainProvider: null, flatTerrain: viewer.terrainProvider, imageryLayer };

  const terrainInfo = infos.find((i) => i.terrain_url);
  if (terrainInfo) {
    try {
      ctx.terrainProvider = await Cesium.CesiumTerrainProvider.fromUrl(apiUrl(terrainInfo.terrain_url), { requestVertexNormals: false });
    } catch (error) {
      hook.errors.push(`terrain: ${error}`);
    }
  }
  // The globe starts on the terrain the layer tree will show (the layers controller keeps it in step after).
  if (ctx.terrainProvider && saved.layers?.terrain !== false) viewer.terrainProvider = ctx.terrainProvider;
  if (saved.camera && !levels) applyCamera(Cesium, viewer, saved.camera);
  // A link's camera below the overview's height shows the 3D content at once (the overview would not hide
  // it); otherwise the tilesets wait, hidden, for the overview to decide.
  const early = Boolean(saved.camera) && !levels && saved.camera.height <= (config.overview_above_m ?? -1);

  const loadState = new Map();
  const progress = () => {
    let p = 0;
    let q = 0;
    for (const s of loadState.values()) {
      p += s.pending;
      q += s.processing;
    }
    status.progress(p, q);
  };
  for (const info of infos) {
    try {
      const tileset = await Cesium.Cesium3DTileset.fromUrl(apiUrl(info.url), {
        maximumScreenSpaceError: 16,
        ...(levels ? {} : STREAMING.tileset),
        enableCollision: true,
        // No sky-tinted environment map: a white model stays white, and software WebGL stays fast.
        environmentMapOptions: { enabled: false },
      });
      // The style's colours replace the glTF materials: a white model is white whatever the builder baked in.
      tileset.colorBlendMode = Cesium.Cesium3DTileColorBlendMode.REPLACE;
      tileset.show = early && !saved.layers?.hiddenTilesets?.includes(info.name);
      loadState.set(info.name, { pending: 0, processing: 0 });
      tileset.allTilesLoaded.addEventListener(() => {
        if (tileset.show) hook.timings.tilesetsLoaded = performance.now();
      });
      tileset.loadProgress.addEventListener((pending, processing) => {
        loadState.set(info.name, { pending, processing });
        progress();
      });
      viewer.scene.primitives.add(tileset);
      hook.tilesets.set(info.name, tileset);
    } catch (error) {
      hook.errors.push(`tileset ${info.name}: ${error}`);
    }
  }

  const basemap = await createBasemap(ctx, config);
  const overviewData = await overviewLoaded;
  const bounds = tilesetBounds(infos, overviewData?.bbox);
  ctx.bounds = bounds;
  /** The start view: an overview of every tileset (or of China when there is none). */
  hook.home = () => {
    if (bounds) overview(viewer, bounds);
    else viewer.camera.setView({ destination: Cesium.Rectangle.fromDegrees(73, 18, 135, 54) });
  };
  if (!saved.camera && !levels) hook.home();
  if (saved.overview === false) document.getElementById("om-overview").checked = false;
  if (saved.labels === false) document.getElementById("om-labels").checked = false;
  // Decides whether the 3D content shows at the camera's height (layers.refresh below applies it).
  const provinceOverview = createOverview(ctx, overviewData);

  let hashTimer = null;
  const saveHash = () => {
    clearTimeout(hashTimer);
    hashTimer = setTimeout(() => {
      const hash = buildHash(Cesium, { viewer, layers, overlays, environment, lang: currentLang() });
      window.history.replaceState(null, "", `#${hash}`);
    }, 200);
  };
  ctx.onChange = saveHash;
  const layers = createLayers(ctx);
  layers.restore(saved.layers);
  layers.refresh();
  ctx.layers = layers;
  const panel = createPanel(ctx);
  ctx.panel = panel;
  const search = createSearch(ctx);
  const measure = createMeasure(ctx);
  const clipping = createClipping(ctx);
  clipping.configureSlider();
  const environment = createEnvironment(ctx);
  const overlays = createOverlays(ctx);
  const compare = await createCompare(ctx, basemap);
  Object.assign(hook, { layers, panel, search, measure, clipping, environment, overlays, basemap, compare, Cesium });

  const clicks = new Cesium.ScreenSpaceEventHandler(viewer.canvas);
  clicks.setInputAction((event) => {
    if (measure.active) return;
    if (hook.overview?.pickAt(event.position)) return;
    // Labels are not objects: the panel picks what lies under them.
    const hidden = [hook.labels?.primitive].filter((p) => p && p.show);
    for (const p of hidden) p.show = false;
    try {
      panel.pickAt(event.position);
    } finally {
      for (const p of hidden) p.show = true;
    }
  }, Cesium.ScreenSpaceEventType.LEFT_CLICK);

  if (levels) {
    if (saved.camera) applyCamera(Cesium, viewer, saved.camera);
    else hook.home();
    provinceOverview.update();
  }
  const labels = createLabels(ctx);
  Object.assign(hook, { overview: provinceOverview, labels });
  if (saved.underground) environment.setUnderground(true);
  if (saved.sun) environment.setSun(true, saved.sun);
  if (saved.indicator) overlays.indicator = saved.indicator;
  if (saved.level !== undefined) overlays.level = saved.level;
  for (const key of saved.overlays ?? []) overlays.set(key, true);
  viewer.camera.moveEnd.addEventListener(saveHash);

  document.getElementById("btn-lang").addEventListener("click", () => setLang(currentLang() === "zh" ? "en" : "zh"));
  onLangChange((lang) => {
    localStorage.setItem("cim.lang", lang);
    document.getElementById("btn-lang").textContent = lang === "zh" ? "English" : "中文";
    layers.refresh();
    panel.render();
    overlays.relabel();
    provinceOverview.relabel();
    basemap.relabel();
    compare.relabel();
    status.render();
    saveHash();
  });
  document.getElementById("btn-lang").textContent = currentLang() === "zh" ? "English" : "中文";
  document.getElementById("btn-share").addEventListener("click", async () => {
    const hash = buildHash(Cesium, { viewer, layers, overlays, environment, lang: currentLang() });
    window.history.replaceState(null, "", `#${hash}`);
    try {
      await navigator.clipboard.writeText(window.location.href);
    } catch {
      // clipboard refused (headless, permissions): the link is in the address bar anyway
    }
    document.getElementById("status-pos").textContent = t("share.copied");
  });

  applyTranslations();
  status.render();
  viewer.scene.requestRender();
  await new Promise((resolve) => {
    const once = viewer.scene.postRender.addEventListener(() => {
      once();
      resolve();
    });
    viewer.scene.requestRender();
  });
  hook.timings.ready = performance.now();
  markReady();

  await hook.idle();
  hook.timings.allTilesLoaded = performance.now();
  performance.mark("cim-all-tiles-loaded");
  status.done();
  progress();
  markAllTilesLoaded();
}

/**
 * Resolve once every tileset and the globe have nothing left to load for the current view
 * (call after moving the camera or toggling layers in tests).
 */
hook.idle = function idle() {
  const viewer = hook.viewer;
  return new Promise((resolve) => {
    let calm = 0;
    const check = viewer.scene.postRender.addEventListener(() => {
      // Hidden tilesets (the overview above city height, a past moment) load nothing and do not count.
      const shown = [...hook.tilesets.values()].filter((ts) => ts.show);
      // Entity overlays build their geometry over several frames (in workers): ready once it is all drawn.
      const done =
        viewer.scene.globe.tilesLoaded && shown.every((ts) => ts.tilesLoaded) && viewer.dataSourceDisplay.ready;
      calm = done ? calm + 1 : 0;
      if (calm >= 2) {
        check();
        resolve();
      } else viewer.scene.requestRender();
    });
    viewer.scene.requestRender();
  });
};

/** Window (CSS pixel) position of a lon/lat (degrees) / ellipsoidal height (m) point, or null. */
hook.windowPosition = function windowPosition(lon, lat, height) {
  const p = Cesium.SceneTransforms.worldToWindowCoordinates(hook.viewer.scene, Cesium.Cartesian3.fromDegrees(lon, lat, height));
  return p ? { x: p.x, y: p.y } : null;
};

main().catch((error) => {
  hook.errors.push(String(error?.stack ?? error));
  console.error("CIM viewer failed to start:", error);
  document.getElementById("loading").textContent = `${t("loading")} ✗ ${error}`;
});

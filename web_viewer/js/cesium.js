// What every Cesium viewer of the platform (the viewer, the dashboard) shares: no Cesium ion (no token, no
// ion assets or geocoder: every request goes to the platform), none of Cesium's stock widgets (the pages have
// their own layer tree, search and tools) and rendering on demand.

const Cesium = window.Cesium;
Cesium.Ion.defaultAccessToken = "";

/** A Cesium.Viewer in `container` with the stock widgets off and request-render mode; `options` add or override. */
export function createViewer(container, options = {}) {
  return new Cesium.Viewer(container, {
    baseLayerPicker: false,
    geocoder: false,
    homeButton: false,
    sceneModePicker: false,
    navigationHelpButton: false,
    animation: false,
    timeline: false,
    fullscreenButton: false,
    infoBox: false,
    selectionIndicator: false,
    requestRenderMode: true,
    ...options,
  });
}

/**
 * The globe's terrain when the platform has none: CesiumJS's ellipsoid, which answers "unknown" when asked
 * whether a tile's children exist, so the globe loads every level from 0 before it may refine to the next
 * (a street view waited for 17 levels of tiles, and of base-map images, one after the other). The ellipsoid
 * has every tile at every level: saying so lets the globe go straight to the tiles the view needs, as it does
 * with a terrain whose layer.json lists its availability.
 */
export function flatTerrain() {
  const provider = new Cesium.EllipsoidTerrainProvider();
  provider.getTileDataAvailable = () => true;
  return provider;
}

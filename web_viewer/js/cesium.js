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

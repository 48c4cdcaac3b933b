// Clipping: a horizontal section plane (keep what lies below a chosen ellipsoidal height) or a box around
// the selected object (cut away what lies inside it), applied to every tileset with ClippingPlaneCollection.
// Planes are defined in an east-north-up frame; each collection's modelMatrix maps that frame into the
// tileset's clipping frame (tileset.clippingPlanesOriginMatrix).

import { t } from "./i18n.js";
import { elements } from "./dom.js";

/**
 * Create the clipping controller.
 * @param {object} ctx {Cesium, viewer, tilesets: Map, panel, bounds: {center: Cartographic, minHeight, maxHeight} | null}
 */
export function createClipping(ctx) {
  const { Cesium, viewer } = ctx;
  const [planeBox, boxBox, heightSlider, heightLabel, sizeInput, message] = elements("clip-plane", "clip-box", "clip-height", "clip-height-value", "clip-box-size", "measure-result");

  function configureSlider() {
    const b = ctx.bounds;
    if (!b) return;
    heightSlider.min = String(Math.floor(b.minHeight));
    heightSlider.max = String(Math.ceil(b.maxHeight + 5));
    heightSlider.value = String(Math.round((b.minHeight + b.maxHeight) / 2));
    heightLabel.textContent = `${heightSlider.value} m`;
  }

  function frameAt(cartesian) {
    return Cesium.Transforms.eastNorthUpToFixedFrame(cartesian);
  }

  // One collection per tileset, kept for the tileset's lifetime: replacing or removing a collection that
  // was drawn with leaves a dangling uniform in CesiumJS 1.140 ("reading '_target'"), so planes are swapped
  // inside it and the collection is disabled instead.
  const collections = new Map();

  function collectionOf(tileset) {
    let collection = collections.get(tileset);
    if (!collection) {
      collection = new Cesium.ClippingPlaneCollection({ edgeWidth: 1.5, edgeColor: Cesium.Color.RED, enabled: false });
      tileset.clippingPlanes = collection;
      collections.set(tileset, collection);
    }
    return collection;
  }

  function apply(planes, enuFrame, union) {
    for (const tileset of ctx.tilesets.values()) {
      const collection = collectionOf(tileset);
      const toTileset = Cesium.Matrix4.inverse(tileset.clippingPlanesOriginMatrix, new Cesium.Matrix4());
      collection.removeAll();
      for (const p of planes) collection.add(new Cesium.ClippingPlane(p.normal, p.distance));
      collection.modelMatrix = Cesium.Matrix4.multiply(toTileset, enuFrame, new Cesium.Matrix4());
      collection.unionClippingRegions = union;
      collection.enabled = true;
    }
    viewer.scene.requestRender();
  }

  function removeAll() {
    for (const collection of collections.values()) collection.enabled = false;
    viewer.scene.requestRender();
  }

  /** Keep only what lies below `height` metres (ellipsoidal) around the tilesets' centre. */
  function sectionAt(height) {
    const b = ctx.bounds;
    if (!b) return;
    const origin = Cesium.Cartesian3.fromRadians(b.center.longitude, b.center.latitude, 0);
    // Normal pointing down: the half-space above the plane is cut away.
    apply([{ normal: new Cesium.Cartesian3(0, 0, -1), distance: height }], frameAt(origin), true);
    heightLabel.textContent = `${Math.round(height)} m`;
  }

  /** Cut away everything inside a cube of `size` metres centred on `center` (ECEF). */
  function boxAt(center, size) {
    const h = size / 2;
    const axes = [
      [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1],
    ];
    // Outward normals; inside the box is on the negative side of all six planes, which (without union)
    // is the only region clipped.
    const planes = axes.map(([x, y, z]) => ({ normal: new Cesium.Cartesian3(x, y, z), distance: -h }));
    apply(planes, frameAt(center), false);
  }

  function selectionCenter() {
    const sel = ctx.panel.selection;
    if (sel?.position) return sel.position;
    if (sel?.props?.lon !== undefined) return Cesium.Cartesian3.fromDegrees(sel.props.lon, sel.props.lat, sel.props.height || 0);
    return null;
  }

  function update() {
    if (planeBox.checked) sectionAt(Number(heightSlider.value));
    else if (boxBox.checked) {
      const center = selectionCenter();
      if (!center) {
        message.textContent = t("tools.clipBoxNeedsSelection");
        boxBox.checked = false;
        removeAll();
        return;
      }
      boxAt(center, Math.max(2, Number(sizeInput.value) || 30));
    } else removeAll();
  }

  planeBox.addEventListener("change", () => {
    if (planeBox.checked) boxBox.checked = false;
    update();
  });
  boxBox.addEventListener("change", () => {
    if (boxBox.checked) planeBox.checked = false;
    update();
  });
  heightSlider.addEventListener("input", () => {
    heightLabel.textContent = `${heightSlider.value} m`;
    if (planeBox.checked) update();
  });
  sizeInput.addEventListener("change", () => boxBox.checked && update());

  return { configureSlider, sectionAt, boxAt, removeAll, update };
}

// Underground view (translucent globe, camera may go below the surface) and sun/shadows at a chosen
// Beijing time (日照).

/**
 * Create the environment controller.
 * @param {object} ctx {Cesium, viewer}
 */
export function createEnvironment(ctx) {
  const { Cesium, viewer } = ctx;
  const scene = viewer.scene;
  const globe = scene.globe;
  const undergroundBox = document.getElementById("underground");
  const sunBox = document.getElementById("sun");
  const sunTime = document.getElementById("sun-time");

  function defaultSunTime() {
    // Local solar noon-ish on the summer solstice, Beijing time.
    const year = new Date().getFullYear();
    return `${year}-06-21T10:00`;
  }
  if (!sunTime.value) sunTime.value = defaultSunTime();

  /** Make the ground translucent so that pipes and foundations below it show. */
  function setUnderground(on) {
    undergroundBox.checked = on;
    globe.translucency.enabled = on;
    globe.translucency.frontFaceAlpha = on ? 0.35 : 1.0;
    globe.translucency.backFaceAlpha = on ? 0.35 : 1.0;
    globe.undergroundColor = on ? Cesium.Color.fromCssColorString("#1a2433").withAlpha(0.5) : Cesium.Color.BLACK;
    scene.screenSpaceCameraController.enableCollisionDetection = !on;
    scene.requestRender();
  }

  /** Sun lighting and shadows at a "YYYY-MM-DDTHH:MM" Beijing time (UTC+8). */
  function setSun(on, when = sunTime.value) {
    sunBox.checked = on;
    if (when) sunTime.value = when;
    viewer.shadows = on;
    viewer.terrainShadows = on ? Cesium.ShadowMode.RECEIVE_ONLY : Cesium.ShadowMode.DISABLED;
    globe.enableLighting = on;
    if (on && sunTime.value) {
      const date = new Date(`${sunTime.value}:00+08:00`);
      if (!Number.isNaN(date.getTime())) viewer.clock.currentTime = Cesium.JulianDate.fromDate(date);
    }
    if (on) {
      viewer.shadowMap.softShadows = false;
      viewer.shadowMap.maximumDistance = 3000.0;
    }
    scene.requestRender();
  }

  undergroundBox.addEventListener("change", () => {
    setUnderground(undergroundBox.checked);
    ctx.onChange?.();
  });
  sunBox.addEventListener("change", () => {
    setSun(sunBox.checked);
    ctx.onChange?.();
  });
  sunTime.addEventListener("change", () => {
    if (sunBox.checked) setSun(true);
    ctx.onChange?.();
  });

  return {
    setUnderground,
    setSun,
    get state() {
      return { underground: undergroundBox.checked, sun: sunBox.checked, time: sunTime.value };
    },
  };
}

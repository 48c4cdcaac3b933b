// Review view: /viewer/?review=<id> places the reviewed model in the city (its own temporary tileset),
// lists the findings beside it, flies to and highlights a finding's elements on click, draws the height
// limit as a translucent surface over the parcel and the setback line on the ground.
// Test hook: window.cimReview = {ready, report, findings, select(i), highlighted, tileset}.

import { getJson, apiUrl } from "./api.js";
import { currentLang } from "./i18n.js";
import { hook } from "./hook.js";

const Cesium = window.Cesium;
const HIGHLIGHT = "color('#ff3b30')";
const params = new URLSearchParams(window.location.search);
const reviewId = params.get("review");

let resolveReady;
const state = {
  id: reviewId,
  ready: new Promise((r) => {
    resolveReady = r;
  }),
  report: null,
  findings: [],
  highlighted: [],
  tileset: null,
  selected: null,
  error: null,
};
window.cimReview = state;

function text(f) {
  return currentLang() === "en" ? f.message_en : f.message_zh;
}

function ringsOf(geometry) {
  if (!geometry) return [];
  if (geometry.type === "Polygon") return [geometry.coordinates[0]];
  if (geometry.type === "MultiPolygon") return geometry.coordinates.map((p) => p[0]);
  return [];
}

function drawParcel(viewer, report) {
  const parcel = report.parcel;
  if (!parcel) return;
  const zeta = report.model.height_anomaly ?? 0;
  const base = (report.model.base_height ?? 0) + zeta;
  const limit = parcel.limits?.max_height;
  for (const ring of ringsOf(parcel.geometry)) {
    const positions = Cesium.Cartesian3.fromDegreesArray(ring.flat());
    viewer.entities.add({
      name: "review-parcel",
      polyline: { positions, width: 2, material: Cesium.Color.YELLOW, clampToGround: true },
    });
    if (limit) {
      viewer.entities.add({
        name: "review-height-limit",
        polygon: {
          hierarchy: positions,
          height: base + limit,
          perPositionHeight: false,
          material: Cesium.Color.fromCssColorString("#ff9500").withAlpha(0.25),
          outline: true,
          outlineColor: Cesium.Color.fromCssColorString("#ff9500"),
        },
      });
    }
  }
  for (const ring of ringsOf(parcel.setback_line)) {
    viewer.entities.add({
      name: "review-setback",
      polyline: {
        positions: Cesium.Cartesian3.fromDegreesArray(ring.flat()),
        width: 2,
        material: new Cesium.PolylineDashMaterialProperty({ color: Cesium.Color.CYAN }),
        clampToGround: true,
      },
    });
  }
}

function highlight(ids) {
  state.highlighted = [...ids];
  if (!state.tileset) return;
  if (ids.length === 0) {
    state.tileset.style = undefined;
    return;
  }
  const shown = ids.slice(0, 200).map((g) => `\${global_id} === '${g.replace(/'/g, "")}'`).join(" || ");
  state.tileset.style = new Cesium.Cesium3DTileStyle({
    color: { conditions: [[shown, HIGHLIGHT], ["true", "color('white', 0.55)"]] },
  });
}

function flyTo(viewer, report, ids) {
  const centres = report.model.element_centres || {};
  const zeta = report.model.height_anomaly ?? 0;
  let points = ids.map((g) => centres[g]).filter(Boolean);
  if (points.length === 0) points = Object.values(centres);
  if (points.length === 0 && report.model.centre) points = [report.model.centre];
  if (points.length === 0) return Promise.resolve(false);
  const cartesians = points.map((p) => Cesium.Cartesian3.fromDegrees(p[0], p[1], p[2] + zeta));
  const sphere = Cesium.BoundingSphere.fromPoints(cartesians);
  sphere.radius = Math.max(sphere.radius, 15);
  return new Promise((resolve) => {
    viewer.camera.flyToBoundingSphere(sphere, {
      duration: 0.8,
      offset: new Cesium.HeadingPitchRange(Cesium.Math.toRadians(30), Cesium.Math.toRadians(-35), sphere.radius * 3.5),
      complete: () => resolve(true),
      cancel: () => resolve(false),
    });
  });
}

function panel(viewer, report) {
  const box = document.createElement("aside");
  box.id = "review-panel";
  box.style.cssText =
    "position:absolute;right:8px;top:56px;bottom:40px;width:340px;overflow:auto;background:rgba(20,28,38,.92);" +
    "color:#eee;font-size:12px;padding:8px;z-index:20;border-radius:4px";
  const verdict = report.verdict === "pass";
  box.innerHTML =
    `<h3 style="margin:2px 0 6px">${currentLang() === "en" ? "Pre-review" : "BIM 预审"} #${state.id}: ` +
    `<span id="review-verdict" style="color:${verdict ? "#4cd964" : "#ff3b30"}">${report.verdict.toUpperCase()}</span></h3>` +
    `<div>${report.file_name}</div><ul id="review-findings" style="list-style:none;padding:0;margin:6px 0"></ul>`;
  const list = box.querySelector("#review-findings");
  state.findings.forEach((f, i) => {
    const li = document.createElement("li");
    li.dataset.index = String(i);
    li.dataset.rule = f.rule;
    li.dataset.check = f.check;
    li.style.cssText = "padding:4px;margin:2px 0;border-left:3px solid;cursor:pointer;border-color:" +
      (f.severity === "error" ? "#ff3b30" : f.severity === "warning" ? "#ffcc00" : "#8e8e93");
    li.textContent = `[${f.check}] ${text(f)}`;
    li.addEventListener("click", () => state.select(i));
    list.appendChild(li);
  });
  document.body.appendChild(box);
}

async function start() {
  await hook.ready;
  const viewer = hook.viewer;
  const answer = await getJson(`/reviews/${encodeURIComponent(reviewId)}`);
  if (!answer.ok || !answer.data?.report) {
    state.error = `review ${reviewId}: ${answer.data?.detail ?? answer.data?.status ?? answer.status}`;
    resolveReady(false);
    return;
  }
  const report = answer.data.report;
  state.report = report;
  state.findings = Object.entries(report.checks).flatMap(([check, c]) =>
    c.findings.filter((f) => f.severity !== "info").map((f) => ({ ...f, check })),
  );
  const link = answer.data.links?.tileset;
  if (link) {
    state.tileset = await Cesium.Cesium3DTileset.fromUrl(apiUrl(link));
    viewer.scene.primitives.add(state.tileset);
  }
  drawParcel(viewer, report);
  panel(viewer, report);
  state.select = async (i) => {
    const f = state.findings[i];
    state.selected = i;
    document.querySelectorAll("#review-findings li").forEach((li) => {
      li.style.background = li.dataset.index === String(i) ? "rgba(255,255,255,.15)" : "";
    });
    highlight(f.global_ids || []);
    state.flown = await flyTo(viewer, report, f.global_ids || []);
    return state.flown;
  };
  await flyTo(viewer, report, []);
  resolveReady(true);
}

if (reviewId) {
  start().catch((error) => {
    state.error = String(error?.stack ?? error);
    resolveReady(false);
  });
}

// The full-screen dashboard (可视化大屏): counts of buildings, facilities and sensors, live alarms, the
// health-check indicators as a chart, the sensors' status as a chart and a small 3D view of the city.
// Everything comes from the platform's API; live updates arrive as server-sent events (/sensors/live).

import { apiUrl, getJson } from "./api.js";
import { STATUS_COLOURS } from "./sensors.js";
import { createViewer } from "./cesium.js";

const Cesium = window.Cesium;
const hook = { charts: {}, loaded: null, errors: [], updates: 0 };
window.cimDashboard = hook;

function setText(id, value) {
  document.getElementById(id).textContent = value === undefined || value === null ? "–" : String(value);
}

async function counts() {
  const status = await getJson("/sensors/status");
  if (!status.ok) return;
  const c = status.data.counts;
  setText("count-buildings", c.buildings);
  setText("count-facilities", c.facilities);
  setText("count-things", c.things);
  setText("count-reporting", c.reporting_datastreams);
  setText("count-alarms", c.active_alarms);
}

async function alarms() {
  const result = await getJson("/alarms?active=true&limit=50");
  const list = document.getElementById("alarm-list");
  const items = result.data?.alarms ?? [];
  list.replaceChildren(
    ...items.map((a) => {
      const li = document.createElement("li");
      li.className = a.severity;
      li.textContent = `${a.raised_at.slice(11, 19)} ${a.message}`;
      return li;
    }),
  );
  if (items.length === 0) {
    const li = document.createElement("li");
    li.textContent = "无告警 no active alarms";
    list.append(li);
  }
}

async function health() {
  const chart = window.echarts.init(document.getElementById("health-chart"), "dark");
  hook.charts.health = chart;
  const result = await getJson("/analysis/health-check");
  const values = (result.data?.values ?? []).filter((v) => v.district_code === null && v.value !== null);
  chart.setOption({
    backgroundColor: "transparent",
    grid: { left: 150, right: 20, top: 10, bottom: 20 },
    tooltip: {},
    xAxis: { type: "value" },
    yAxis: { type: "category", data: values.map((v) => v.zh), axisLabel: { fontSize: 11 } },
    series: [
      {
        type: "bar",
        data: values.map((v) => ({
          value: Number(v.value.toFixed(2)),
          itemStyle: { color: v.meets === false ? STATUS_COLOURS.alarm : STATUS_COLOURS.ok },
        })),
      },
    ],
  });
  return values.length;
}

async function sensorStatus() {
  if (!hook.charts.status) hook.charts.status = window.echarts.init(document.getElementById("status-chart"), "dark");
  const result = await getJson("/sensors/latest");
  const tally = { ok: 0, warning: 0, alarm: 0, nodata: 0 };
  for (const f of result.data?.features ?? []) tally[f.properties.status] += 1;
  hook.charts.status.setOption({
    backgroundColor: "transparent",
    tooltip: {},
    series: [
      {
        type: "pie",
        radius: ["40%", "70%"],
        data: Object.entries(tally).map(([name, value]) => ({ name, value, itemStyle: { color: STATUS_COLOURS[name] } })),
      },
    ],
  });
  return result.data?.features ?? [];
}

async function view(features) {
  const viewer = createViewer("cesium", {
    baseLayer: Cesium.ImageryLayer.fromProviderAsync(
      Cesium.TileMapServiceImageryProvider.fromUrl(Cesium.buildModuleUrl("Assets/Textures/NaturalEarthII")),
    ),
  });
  hook.viewer = viewer;
  const tilesets = await getJson("/tilesets");
  for (const info of Array.isArray(tilesets.data) ? tilesets.data : []) {
    if (!info.url) continue;
    try {
      const tileset = await Cesium.Cesium3DTileset.fromUrl(apiUrl(info.url));
      viewer.scene.primitives.add(tileset);
    } catch (error) {
      hook.errors.push(String(error));
    }
  }
  const points = features.filter((f) => f.geometry);
  for (const f of points) {
    const [lon, lat] = f.geometry.coordinates;
    viewer.entities.add({
      position: Cesium.Cartesian3.fromDegrees(lon, lat, 5),
      point: { pixelSize: 8, color: Cesium.Color.fromCssColorString(STATUS_COLOURS[f.properties.status]) },
    });
  }
  if (points.length) {
    viewer.zoomTo(viewer.entities, new Cesium.HeadingPitchRange(0, Cesium.Math.toRadians(-45), 2500));
  } else {
    viewer.camera.setView({ destination: Cesium.Rectangle.fromDegrees(73, 18, 135, 54) });
  }
}

function live() {
  const events = new EventSource(apiUrl("/sensors/live"));
  let pending = null;
  events.addEventListener("observation", (event) => {
    hook.updates += JSON.parse(event.data).length;
    if (pending) return;
    pending = setTimeout(() => {
      pending = null;
      counts();
      alarms();
      sensorStatus();
    }, 1000);
  });
}

function clock() {
  setText("clock", new Date().toLocaleString("zh-CN"));
}

hook.loaded = (async () => {
  clock();
  setInterval(clock, 1000);
  await Promise.all([counts(), alarms()]);
  const indicators = await health();
  const features = await sensorStatus();
  await view(features);
  live();
  return { indicators, sensors: features.length };
})().catch((error) => {
  hook.errors.push(String(error?.stack ?? error));
  throw error;
});

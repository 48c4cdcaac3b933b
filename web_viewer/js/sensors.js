// Live sensor layer: every datastream at its thing (a point on its CIM feature), coloured by its latest value
// against its alarm thresholds, updated from the server-sent events of /sensors/live as observations are
// stored; a click opens the time series (Apache ECharts) and the sensor's alarms. Attaches itself to the
// viewer once it is ready (window.cimViewer.ready), so main.js needs no change.

import { apiUrl, getJson } from "./api.js";
import { currentLang } from "./i18n.js";
import { hook as viewerHook } from "./hook.js";

export const STATUS_COLOURS = { ok: "#2ecc71", warning: "#f39c12", alarm: "#e74c3c", nodata: "#95a5a6" };

/** Status of a value against the thresholds (mirrors /sensors/latest: within 10 % of a threshold is a warning). */
export function statusOf(value, over, under, activeAlarms) {
  if (value === null || value === undefined) return "nodata";
  if (typeof value !== "number") return activeAlarms ? "alarm" : "ok";
  if ((over !== null && over !== undefined && value > over) || (under !== null && under !== undefined && value < under)) {
    return "alarm";
  }
  if (activeAlarms) return "alarm";
  if (over !== null && over !== undefined && value > over - 0.1 * Math.abs(over)) return "warning";
  if (under !== null && under !== undefined && value < under + 0.1 * Math.abs(under)) return "warning";
  return "ok";
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  Object.assign(node, attrs);
  if (text) node.textContent = text;
  return node;
}

function sensorPanel() {
  let panel = document.getElementById("sensor-panel");
  if (panel) return panel;
  panel = el("aside", { id: "sensor-panel", hidden: true });
  panel.style.cssText =
    "position:absolute;right:12px;bottom:36px;width:440px;background:rgba(20,28,38,.94);color:#eee;" +
    "padding:10px 12px;border-radius:6px;z-index:20;font-size:13px;box-shadow:0 2px 10px rgba(0,0,0,.5)";
  const close = el("button", { type: "button", id: "sensor-panel-close" }, "×");
  close.style.cssText = "float:right;background:none;border:0;color:#eee;font-size:18px;cursor:pointer";
  close.addEventListener("click", () => {
    panel.hidden = true;
  });
  panel.append(close, el("h3", { id: "sensor-title" }), el("div", { id: "sensor-value" }));
  const chart = el("div", { id: "sensor-chart" });
  chart.style.cssText = "width:100%;height:220px";
  panel.append(chart, el("h4", {}, currentLang() === "zh" ? "告警" : "Alarms"), el("ul", { id: "sensor-alarms" }));
  document.body.append(panel);
  return panel;
}

/**
 * Create the live layer.
 * @param {object} hook window.cimViewer (viewer, Cesium)
 */
export function createSensors(hook) {
  const Cesium = hook.Cesium ?? window.Cesium;
  const viewer = hook.viewer;
  const source = new Cesium.CustomDataSource("sensors");
  viewer.dataSources.add(source);
  const streams = new Map(); // datastream id → {entity, props, status}
  let chart = null;
  let shownId = null;
  let resolveLoaded;
  const state = {
    loaded: new Promise((r) => {
      resolveLoaded = r;
    }),
    updates: 0,
    lastUpdate: null,
    connected: false,
  };

  function paint(item) {
    const colour = Cesium.Color.fromCssColorString(STATUS_COLOURS[item.status] ?? STATUS_COLOURS.nodata);
    item.entity.point.color = colour;
    item.entity.label.text = `${item.props.result_number ?? item.props.result ?? "–"} ${item.props.unit ?? ""}`;
    viewer.scene.requestRender();
  }

  function upsert(feature) {
    const p = feature.properties;
    if (!feature.geometry) return;
    const [lon, lat] = feature.geometry.coordinates;
    let item = streams.get(p.datastream_id);
    if (!item) {
      const entity = source.entities.add({
        id: `sensor-${p.datastream_id}`,
        position: Cesium.Cartesian3.fromDegrees(lon, lat, 2),
        point: {
          pixelSize: 12,
          outlineColor: Cesium.Color.WHITE,
          outlineWidth: 2,
          heightReference: Cesium.HeightReference.RELATIVE_TO_GROUND,
          disableDepthTestDistance: Number.POSITIVE_INFINITY,
        },
        label: {
          font: "12px sans-serif",
          pixelOffset: new Cesium.Cartesian2(0, -18),
          fillColor: Cesium.Color.WHITE,
          showBackground: true,
          heightReference: Cesium.HeightReference.RELATIVE_TO_GROUND,
          disableDepthTestDistance: Number.POSITIVE_INFINITY,
          distanceDisplayCondition: new Cesium.DistanceDisplayCondition(0, 3000),
        },
      });
      entity.cimSensor = p.datastream_id;
      item = { entity, props: p, status: p.status };
      streams.set(p.datastream_id, item);
    }
    item.props = p;
    item.status = p.status;
    paint(item);
  }

  async function reload() {
    const result = await getJson("/sensors/latest");
    if (!result.ok) return;
    for (const f of result.data.features) upsert(f);
  }

  function onObservations(items) {
    for (const o of items) {
      const item = streams.get(o.d);
      if (!item) {
        reload();
        continue;
      }
      item.props = { ...item.props, result: o.r, result_number: o.n, phenomenon_time: o.t };
      item.status = statusOf(o.n ?? o.r, item.props.over, item.props.under, o.n === null ? item.props.active_alarms : 0);
      paint(item);
      if (shownId === o.d) showSeries(o.d);
    }
    state.updates += items.length;
    state.lastUpdate = performance.now();
  }

  function connect() {
    const events = new EventSource(apiUrl("/sensors/live"));
    events.addEventListener("open", () => {
      state.connected = true;
    });
    events.addEventListener("observation", (event) => onObservations(JSON.parse(event.data)));
    events.addEventListener("error", () => {
      state.connected = false; // EventSource reconnects by itself (retry: 2000 ms)
    });
    return events;
  }

  async function showSeries(id) {
    const item = streams.get(id);
    if (!item) return;
    shownId = id;
    const panel = sensorPanel();
    panel.hidden = false;
    document.getElementById("sensor-title").textContent = `${item.props.thing} · ${item.props.observed_property}`;
    document.getElementById("sensor-value").textContent =
      `${item.props.result_number ?? item.props.result ?? "–"} ${item.props.unit ?? ""} (${item.status})`;
    const q = "$orderby=phenomenonTime desc&$top=200&$select=phenomenonTime,result";
    const [obs, alarms] = await Promise.all([
      getJson(`/sta/v1.1/Datastreams(${id})/Observations?${q}`),
      getJson(`/alarms?datastream=${id}&limit=20`),
    ]);
    const points = (obs.data?.value ?? []).map((o) => [o.phenomenonTime.split("/")[0], o.result]).reverse();
    if (!chart) chart = window.echarts.init(document.getElementById("sensor-chart"), "dark");
    const marks = [];
    if (item.props.over !== null && item.props.over !== undefined) marks.push({ yAxis: item.props.over, name: "over" });
    if (item.props.under !== null && item.props.under !== undefined) marks.push({ yAxis: item.props.under, name: "under" });
    chart.setOption({
      backgroundColor: "transparent",
      grid: { left: 48, right: 16, top: 16, bottom: 28 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "time" },
      yAxis: { type: "value", name: item.props.unit ?? "", scale: true },
      series: [
        {
          type: "line",
          showSymbol: false,
          data: points,
          markLine: { symbol: "none", lineStyle: { color: STATUS_COLOURS.alarm }, data: marks },
        },
      ],
    });
    const list = document.getElementById("sensor-alarms");
    list.replaceChildren(
      ...(alarms.data?.alarms ?? []).map((a) =>
        el("li", { className: a.active ? "alarm-active" : "alarm-cleared" }, `${a.raised_at} ${a.severity}: ${a.message}`),
      ),
    );
  }

  const clicks = new Cesium.ScreenSpaceEventHandler(viewer.canvas);
  clicks.setInputAction((event) => {
    const picked = viewer.scene.pick(event.position);
    const id = picked?.id?.cimSensor;
    if (id !== undefined) showSeries(id);
  }, Cesium.ScreenSpaceEventType.LEFT_CLICK);

  reload().then(() => resolveLoaded(true));
  connect();
  setInterval(reload, 15000); // alarm state and new sensors, besides the live values

  return Object.assign(state, {
    source,
    /** CSS colour of a datastream's point, or null. */
    colourOf(id) {
      const item = streams.get(id);
      return item ? item.entity.point.color.getValue(Cesium.JulianDate.now()).toCssHexString() : null;
    },
    statusOf(id) {
      return streams.get(id)?.status ?? null;
    },
    show: showSeries,
    /** The ECharts instance of the time-series panel (null before the first click). */
    chart() {
      return chart;
    },
  });
}

viewerHook.ready.then((hook) => {
  hook.sensors = createSensors(hook);
});

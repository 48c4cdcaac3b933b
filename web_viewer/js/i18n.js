// A small dictionary-based i18n: Chinese (zh-CN) by default, English on request.
// Static text carries data-i18n="key" (or data-i18n-placeholder); dynamic text calls t(key, vars).

const DICT = {
  zh: {
    title: "CIM 城市信息模型平台",
    "search.placeholder": "搜索名称、地址或编号",
    "search.go": "搜索",
    "search.none": "未找到结果",
    share: "分享链接",
    "share.copied": "链接已复制到地址栏",
    "layers.title": "图层",
    "layers.buildings": "建筑白模",
    "layers.bim": "BIM 模型",
    "layers.facilities": "市政设施",
    "layers.kinds": "按类型",
    "layers.terrain": "地形",
    "layers.imagery": "底图",
    "style.title": "建筑着色",
    "style.white": "白模",
    "style.use": "按用途",
    "style.safety": "按房屋安全等级",
    "style.height": "按高度",
    "legend.noClass": "未鉴定",
    "legend.height": "高度 {min}–{max} m",
    "overlays.title": "CIM+ 专题",
    "overlays.choropleth": "体检指标分区图",
    "overlays.pickIndicator": "（选择指标）",
    "overlays.dangerous": "危房（C/D级）",
    "overlays.gas": "燃气管线邻近",
    "overlays.fire": "消防5分钟覆盖盲区",
    "overlays.flood": "洪涝淹没范围",
    "overlays.level": "水位 (m)",
    "overlays.empty": "{name}：暂无数据",
    "overlays.failed": "{name}：加载失败（{status}）",
    "overlays.loaded": "{name}：{count} 个要素",
    "overlays.noIndicator": "请先选择体检指标",
    "tools.title": "工具",
    "tools.distance": "测距离",
    "tools.area": "测面积",
    "tools.height": "测高度",
    "tools.clear": "清除",
    "tools.hint": "左键取点，右键结束",
    "tools.distanceResult": "距离：{value}",
    "tools.areaResult": "面积：{value}",
    "tools.heightResult": "高差：{value}",
    "tools.clipPlane": "水平剖切",
    "tools.clipBox": "剖切盒（选中对象）",
    "tools.boxSize": "盒子尺寸 (m)",
    "tools.clipBoxNeedsSelection": "请先点选一个建筑或构件",
    "tools.underground": "地下模式（半透明地表）",
    "tools.sun": "日照与阴影",
    loading: "正在加载…",
    "status.tiles": "瓦片：待加载 {pending}，处理中 {processing}",
    "status.loaded": "瓦片已全部加载",
    "status.fps": "{fps} 帧/秒",
    "status.noTilesets": "尚无三维瓦片数据集",
    "panel.building": "建筑",
    "panel.element": "BIM 构件",
    "panel.facility": "市政设施",
    "panel.overlay": "专题要素",
    "panel.details": "详细信息",
    "panel.notFound": "数据库中未找到该对象",
    "prop.building_id": "建筑编号",
    "prop.name": "名称",
    "prop.use": "用途",
    "prop.height": "高度 (m)",
    "prop.storeys": "层数",
    "prop.year_built": "建成年份",
    "prop.safety_class": "安全等级",
    "prop.cim_level": "CIM 等级",
    "prop.global_id": "GlobalId",
    "prop.ifc_class": "IFC 类型",
    "prop.storey": "楼层",
    "prop.facility_id": "设施编号",
    "prop.kind": "类型",
    "prop.address": "地址",
    "prop.base_height": "基底高程 (m)",
    "prop.gross_floor_area": "建筑面积 (m²)",
    "prop.district_code": "行政区划",
    "prop.type_name": "类型名称",
    "prop.material": "材料",
    "prop.elements": "构件数量",
    "prop.datasets": "数据来源",
    "unit.m": "{v} 米",
    "unit.km": "{v} 公里",
    "unit.m2": "{v} 平方米",
    "unit.km2": "{v} 平方公里",
  },
  en: {
    title: "CIM City Information Model Platform",
    "search.placeholder": "Search name, address or id",
    "search.go": "Search",
    "search.none": "No results",
    share: "Share link",
    "share.copied": "Link placed in the address bar",
    "layers.title": "Layers",
    "layers.buildings": "Buildings (white model)",
    "layers.bim": "BIM models",
    "layers.facilities": "Municipal facilities",
    "layers.kinds": "by kind",
    "layers.terrain": "Terrain",
    "layers.imagery": "Base map",
    "style.title": "Building colours",
    "style.white": "White model",
    "style.use": "By use",
    "style.safety": "By housing safety class",
    "style.height": "By height",
    "legend.noClass": "not appraised",
    "legend.height": "height {min}–{max} m",
    "overlays.title": "CIM+ overlays",
    "overlays.choropleth": "Health-check choropleth",
    "overlays.pickIndicator": "(choose an indicator)",
    "overlays.dangerous": "Dangerous buildings (C/D)",
    "overlays.gas": "Gas pipe proximity",
    "overlays.fire": "Beyond 5-min fire reach",
    "overlays.flood": "Flood extent",
    "overlays.level": "Water level (m)",
    "overlays.empty": "{name}: no data yet",
    "overlays.failed": "{name}: could not load ({status})",
    "overlays.loaded": "{name}: {count} features",
    "overlays.noIndicator": "Choose a health-check indicator first",
    "tools.title": "Tools",
    "tools.distance": "Distance",
    "tools.area": "Area",
    "tools.height": "Height",
    "tools.clear": "Clear",
    "tools.hint": "Left click adds a point, right click ends",
    "tools.distanceResult": "Distance: {value}",
    "tools.areaResult": "Area: {value}",
    "tools.heightResult": "Height difference: {value}",
    "tools.clipPlane": "Horizontal section",
    "tools.clipBox": "Clipping box (selection)",
    "tools.boxSize": "Box size (m)",
    "tools.clipBoxNeedsSelection": "Select a building or element first",
    "tools.underground": "Underground (translucent ground)",
    "tools.sun": "Sun and shadows",
    loading: "Loading…",
    "status.tiles": "tiles: {pending} pending, {processing} processing",
    "status.loaded": "all tiles loaded",
    "status.fps": "{fps} fps",
    "status.noTilesets": "no 3D Tiles tileset yet",
    "panel.building": "Building",
    "panel.element": "BIM element",
    "panel.facility": "Municipal facility",
    "panel.overlay": "Overlay feature",
    "panel.details": "Details",
    "panel.notFound": "Not found in the database",
    "prop.building_id": "Building id",
    "prop.name": "Name",
    "prop.use": "Use",
    "prop.height": "Height (m)",
    "prop.storeys": "Storeys",
    "prop.year_built": "Year built",
    "prop.safety_class": "Safety class",
    "prop.cim_level": "CIM level",
    "prop.global_id": "GlobalId",
    "prop.ifc_class": "IFC class",
    "prop.storey": "Storey",
    "prop.facility_id": "Facility id",
    "prop.kind": "Kind",
    "prop.address": "Address",
    "prop.base_height": "Base height (m)",
    "prop.gross_floor_area": "Gross floor area (m²)",
    "prop.district_code": "District",
    "prop.type_name": "Type",
    "prop.material": "Material",
    "prop.elements": "Elements",
    "prop.datasets": "Source datasets",
    "unit.m": "{v} m",
    "unit.km": "{v} km",
    "unit.m2": "{v} m²",
    "unit.km2": "{v} km²",
  },
};

let lang = "zh";
const listeners = [];

/** The current language code: "zh" or "en". */
export function currentLang() {
  return lang;
}

/** Translate `key`, substituting `{name}` placeholders from `vars`; unknown keys come back unchanged. */
export function t(key, vars = {}) {
  const text = DICT[lang][key] ?? DICT.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** Pick the label of a [zh, en] pair in the current language. */
export function pick(pair) {
  return lang === "en" ? pair[1] : pair[0];
}

/** Translate every element of `root` that carries data-i18n / data-i18n-placeholder. */
export function applyTranslations(root = document) {
  document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
  document.title = t("title");
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
}

/** Switch the language, re-translate the page and tell the listeners (legends, panel…). */
export function setLang(next) {
  lang = next === "en" ? "en" : "zh";
  applyTranslations();
  for (const fn of listeners) fn(lang);
}

/** Call `fn(lang)` after every language switch. */
export function onLangChange(fn) {
  listeners.push(fn);
}

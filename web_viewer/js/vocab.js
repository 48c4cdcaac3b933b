// Labels and colours of the platform's controlled vocabularies (mirror of cim/vocabulary.py).

/** facility.kind → [zh, en, CSS colour]. */
export const FACILITY_KINDS = {
  pipe_water: ["给水管线", "water supply pipe", "#1e88e5"],
  pipe_drainage: ["排水管线", "drainage pipe", "#6d4c41"],
  pipe_gas: ["燃气管线", "gas pipe", "#fdd835"],
  pipe_heat: ["热力管线", "district heating pipe", "#e53935"],
  pipe_power: ["电力管线", "power cable duct", "#8e24aa"],
  pipe_telecom: ["通信管线", "telecom duct", "#43a047"],
  manhole: ["检查井", "manhole", "#546e7a"],
  hydrant: ["消火栓", "fire hydrant", "#d50000"],
  street_lamp: ["路灯", "street lamp", "#ffb300"],
  road: ["道路", "road centre line", "#9e9e9e"],
  bridge: ["桥梁", "bridge", "#8d6e63"],
  park: ["公园", "park", "#66bb6a"],
  green_space: ["绿地", "green space", "#9ccc65"],
  greenway: ["绿道", "greenway", "#2e7d32"],
  shelter: ["应急避难场所", "emergency shelter", "#26a69a"],
  fire_station: ["消防站", "fire station", "#c62828"],
  school: ["中小学", "primary or secondary school", "#5c6bc0"],
  kindergarten: ["幼儿园", "kindergarten", "#ec407a"],
  clinic: ["社区卫生服务站", "community clinic", "#ef5350"],
  community_service: ["社区便民服务设施", "community service point", "#ab47bc"],
  waterlogging_point: ["内涝积水点", "waterlogging point", "#0277bd"],
  water_body: ["水体", "water body", "#4fc3f7"],
};

/** building.use → [zh, en, CSS colour]. */
export const BUILDING_USES = {
  residential: ["住宅", "residential", "#f4c27a"],
  commercial: ["商业", "commercial", "#e57373"],
  office: ["办公", "office", "#64b5f6"],
  industrial: ["工业", "industrial", "#a1887f"],
  public: ["公共服务", "public service", "#81c784"],
  education: ["教育", "education", "#ba68c8"],
  medical: ["医疗", "medical", "#f06292"],
  mixed: ["商住混合", "mixed use", "#ffb74d"],
  other: ["其他", "other", "#bdbdbd"],
};

/** building.safety_class → [zh, en, CSS colour]. */
export const SAFETY_CLASSES = {
  A: ["A级：结构安全", "A: safe", "#2e7d32"],
  B: ["B级：基本安全", "B: basically safe", "#9ccc65"],
  C: ["C级：局部危险", "C: locally dangerous", "#fb8c00"],
  D: ["D级：整幢危险", "D: dangerous as a whole", "#d50000"],
};

/** Colours of common IFC classes in the BIM layer (others fall back to a light grey). */
export const IFC_CLASS_COLORS = {
  IfcWall: "#e0d8c8",
  IfcWallStandardCase: "#e0d8c8",
  IfcSlab: "#b0b0b0",
  IfcRoof: "#a05a3c",
  IfcColumn: "#9e9e9e",
  IfcBeam: "#8d8d8d",
  IfcWindow: "#81d4fa",
  IfcDoor: "#a1887f",
  IfcStair: "#bcaaa4",
  IfcStairFlight: "#bcaaa4",
  IfcRailing: "#757575",
  IfcCovering: "#eeeeee",
  IfcPlate: "#90a4ae",
  IfcMember: "#90a4ae",
  IfcFooting: "#8d8d8d",
  IfcPile: "#8d8d8d",
  IfcSpace: "#c5e1a5",
  IfcBridgePart: "#b0a89a",
  IfcBearing: "#616161",
};

/** CIM levels (MOHURD guideline). */
export const CIM_LEVELS = {
  1: "CIM1", 2: "CIM2", 3: "CIM3", 4: "CIM4", 5: "CIM5", 6: "CIM6", 7: "CIM7",
};

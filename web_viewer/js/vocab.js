// The platform's vocabulary, served by the API (`GET /vocabulary`, cim/api/vocabulary.py): labels from
// cim/vocabulary.py, colours from tiles/schema.py and the tile content classes of the registry
// (tiles/classes/) with their legends. Fetched once, when this module is first imported (top-level await),
// so that the modules importing these constants get them filled in. The API root is the viewer's
// config `api` prefix (as api.js uses it), else the origin that served the viewer.

async function fetchVocabulary() {
  let prefix = "";
  try {
    const config = await fetch(new URL("/viewer/config.json", window.location.origin).href);
    if (config.ok) prefix = ((await config.json()).api || "").replace(/\/$/, "");
  } catch {
    prefix = "";
  }
  const response = await fetch(new URL(prefix + "/vocabulary", window.location.origin).href, {
    headers: { Accept: "application/json" },
  });
  if (!response.ok) throw new Error(`GET /vocabulary: HTTP ${response.status}`);
  return response.json();
}

const vocabulary = await fetchVocabulary();

/** facility.kind → [zh, en, CSS colour]. */
export const FACILITY_KINDS = vocabulary.FACILITY_KINDS;

/** building.use → [zh, en, CSS colour]. */
export const BUILDING_USES = vocabulary.BUILDING_USES;

/** building.safety_class → [zh, en, CSS colour]. */
export const SAFETY_CLASSES = vocabulary.SAFETY_CLASSES;

/** Colours of IFC classes in the BIM layer (others: DEFAULT_IFC_CLASS_COLOR). */
export const IFC_CLASS_COLORS = vocabulary.IFC_CLASS_COLORS;

/** Colour of the IFC classes the tile builder has no colour for. */
export const DEFAULT_IFC_CLASS_COLOR = vocabulary.DEFAULT_IFC_CLASS_COLOR;

/** CIM levels (MOHURD guideline). */
export const CIM_LEVELS = vocabulary.CIM_LEVELS;

/**
 * Tile content classes by metadata class: {layer, class, title, zh, id_property, legend_property,
 * legend: [{value, zh, en, color}]} (the registry of tiles/classes/).
 */
export const TILE_CLASSES = vocabulary.TILE_CLASSES;

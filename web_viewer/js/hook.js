// The viewer's test and extension hook `window.cimViewer`, in a module of its own that imports nothing:
// vocab.js waits for the API (top-level await), so main.js, which imports it, runs after modules that do
// not; review.js and sensors.js import the hook from here and wait for `hook.ready` instead of reading
// `window.cimViewer` before main.js has set it.

let resolveReady;
let resolveAllLoaded;

/** The viewer's hook; main.js fills it in and resolves `ready` and `allTilesLoaded`. */
export const hook = {
  viewer: null,
  tilesets: new Map(),
  tilesetInfo: [],
  timings: { start: performance.now() },
  ready: new Promise((r) => {
    resolveReady = r;
  }),
  allTilesLoaded: new Promise((r) => {
    resolveAllLoaded = r;
  }),
  errors: [],
};
window.cimViewer = hook;

/** Resolve `hook.ready` (the viewer and its controllers exist). */
export function markReady() {
  resolveReady(hook);
}

/** Resolve `hook.allTilesLoaded` (the first view has settled). */
export function markAllTilesLoaded() {
  resolveAllLoaded(hook);
}

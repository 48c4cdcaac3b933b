// Small DOM helpers shared by the viewer's controllers.

/**
 * The page's elements by id: `{name: "element-id", …}` → `{name: HTMLElement, …}`. A missing element throws
 * at once (naming it), instead of failing later on `null`.
 */
export function elementsById(ids) {
  const out = {};
  for (const [name, id] of Object.entries(ids)) {
    const element = document.getElementById(id);
    if (!element) throw new Error(`the page has no element #${id}`);
    out[name] = element;
  }
  return out;
}

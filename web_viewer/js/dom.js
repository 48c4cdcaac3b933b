// Small DOM helpers shared by the viewer's controllers.

/**
 * The page's elements with these ids, in order (destructure them: `const [a, b] = elements("id-a", "id-b")`).
 * A missing element throws at once, naming it, instead of failing later on `null`.
 */
export function elements(...ids) {
  return ids.map((id) => {
    const element = document.getElementById(id);
    if (!element) throw new Error(`the page has no element #${id}`);
    return element;
  });
}

// The archived as-built versions of a building in the attribute panel (/archive/by-building/{id}): who,
// when, note and review of each version, and a download link when the API key's role may download.
// Archive metadata needs an API key: it is asked for once and kept for the browser session only.

import { apiUrl } from "./api.js";
import { pick } from "./i18n.js";

const KEY_STORE = "cim.apiKey";

const TEXT = {
  heading: ["竣工档案", "As-built archive"],
  none: ["暂无归档版本", "No archived versions"],
  needKey: ["查看档案需要 API 密钥", "An API key is needed to see the archive"],
  keyPlaceholder: ["API 密钥", "API key"],
  show: ["查看", "Show"],
  download: ["下载", "Download"],
  deleted: ["已撤销", "withdrawn"],
  review: ["审查", "review"],
  failed: ["档案服务不可用", "The archive is not available"],
};

function tr(key) {
  return pick(TEXT[key]);
}

/** The API key of this browser session ("" when none was given). */
export function apiKey() {
  return sessionStorage.getItem(KEY_STORE) || "";
}

async function getWithKey(path) {
  const headers = { Accept: "application/json" };
  const key = apiKey();
  if (key) headers["X-API-Key"] = key;
  try {
    const response = await fetch(apiUrl(path), { headers });
    return { status: response.status, data: response.ok ? await response.json() : null };
  } catch {
    return { status: 0, data: null };
  }
}

async function download(url, fileName) {
  const response = await fetch(url, { headers: { "X-API-Key": apiKey() } });
  if (!response.ok) return;
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = fileName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

function keyForm(onKey) {
  const form = document.createElement("form");
  form.className = "archive-key";
  const p = document.createElement("p");
  p.className = "muted";
  p.textContent = tr("needKey");
  const input = document.createElement("input");
  input.type = "password";
  input.autocomplete = "off";
  input.placeholder = tr("keyPlaceholder");
  const button = document.createElement("button");
  button.type = "submit";
  button.textContent = tr("show");
  form.append(p, input, button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!input.value.trim()) return;
    sessionStorage.setItem(KEY_STORE, input.value.trim());
    onKey();
  });
  return form;
}

function versionItem(model, v) {
  const li = document.createElement("li");
  li.className = "archive-version";
  li.dataset.version = String(v.version);
  const when = new Date(v.created_at).toLocaleString();
  const what = v.kind === "tombstone" ? `${tr("deleted")}: ${v.reason || ""}` : v.file_name;
  const parts = [`${model.model_key} v${v.version}`, when, v.author || "", what];
  if (v.review_id) parts.push(`${tr("review")} #${v.review_id}`);
  const line = document.createElement("span");
  line.textContent = parts.join(" · ");
  li.append(line);
  if (v.note) {
    const note = document.createElement("div");
    note.className = "muted";
    note.textContent = v.note;
    li.append(note);
  }
  if (v.download) {
    const link = document.createElement("a");
    link.href = v.download;
    link.className = "archive-download";
    link.textContent = tr("download");
    link.addEventListener("click", (event) => {
      event.preventDefault();
      download(v.download, v.file_name);
    });
    li.append(" ", link);
  }
  return li;
}

/**
 * Append the archive section of building `buildingId` to `container`.
 * `isCurrent()` tells whether the panel still shows that building when the answer arrives.
 */
export async function showArchive(container, buildingId, isCurrent = () => true) {
  if (buildingId === undefined || buildingId === null) return;
  const section = document.createElement("section");
  section.id = "panel-archive";
  const heading = document.createElement("h4");
  heading.textContent = tr("heading");
  const result = await getWithKey(`/archive/by-building/${encodeURIComponent(buildingId)}`);
  if (!isCurrent()) return;
  section.append(heading);
  if (result.status === 401 || result.status === 403) {
    section.append(
      keyForm(() => {
        section.remove();
        showArchive(container, buildingId, isCurrent);
      }),
    );
  } else if (!result.data) {
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = tr("failed");
    section.append(p);
  } else {
    const list = document.createElement("ul");
    list.className = "archive-versions";
    for (const model of result.data.models) {
      for (const v of model.versions) list.append(versionItem(model, v));
    }
    if (!list.children.length) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = tr("none");
      section.append(p);
    } else {
      section.append(list);
    }
  }
  document.getElementById("panel-archive")?.remove();
  container.append(section);
}

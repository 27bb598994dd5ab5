// Small DOM helpers shared by the app's modules.

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** Builds an element: h('button', {class: 'x', onclick: f}, 'text', child). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function formatTime(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '0:00';
  const s = Math.floor(seconds % 60);
  const m = Math.floor(seconds / 60) % 60;
  const hours = Math.floor(seconds / 3600);
  const mm = hours ? String(m).padStart(2, '0') : String(m);
  return `${hours ? `${hours}:` : ''}${mm}:${String(s).padStart(2, '0')}`;
}

export function formatDate(value) {
  if (!value) return '';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

let toastTimer = null;
/** Shows a message over the page for a few seconds (errors that have no other place). */
export function toast(message) {
  const node = $('#toast');
  node.textContent = message;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { node.hidden = true; }, 6000);
}

/** Writes a status line; `kind` is '', 'error' or 'ok'. */
export function say(node, message, kind = '') {
  node.textContent = message ?? '';
  node.dataset.kind = kind;
}

// A track as `GET /api/library` gives it: {track_id, title, artist, duration_ms,
// has_cover, cover_url?, added_at}. Title and artist come from the file's tags and may
// be null; `cover_url` is there when a cover picture is stored.
export const trackId = (t) => t.track_id;
export const trackTitle = (t) => t.title || t.track_id;
export const trackArtist = (t) => t.artist || '';
export const trackDuration = (t) => (Number.isFinite(t.duration_ms) ? t.duration_ms / 1000 : null);

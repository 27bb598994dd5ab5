// The saved play queue (issue 19, ADR 28): the player's queue, current track and
// position go to the server (PUT /api/me/play-queue) on a track change, a pause, every
// 20 s while playing, after queue edits and when the page hides; on sign-in they come
// back (GET /api/me/play-queue), paused where they were. This browser's copy in
// localStorage is the fast path: shown at once, replaced when the server holds a later
// save (another device's).

import { api, onSession } from './api.js';

const EVERY_MS = 20_000; // server saves while playing
const LOCAL_EVERY_MS = 3_000; // this browser's copy while playing
const EDIT_DELAY_MS = 1_500; // queue edits come in bursts
const MAX_TRACKS = 1000; // what the server keeps

let hooks = null;
let user = null;
let sending = null;
let again = false;
let lastSent = '';
let lastServer = 0;
let lastLocal = 0;
let editTimer = null;
// Bumped by anything the listener does to the queue: a restore that arrives later does
// not replace what they chose meanwhile.
let generation = 0;

const storageKey = () => `jukebox.queue.${user}`;

function readLocal() {
  try {
    return JSON.parse(localStorage.getItem(storageKey()) || 'null');
  } catch {
    return null;
  }
}

// Only what a row and the player need: cover links expire, and are fetched again.
// `playlist_id`: a song of someone's public playlist streams through it (ADR 32).
const slim = (t) => ({
  track_id: t.track_id, title: t.title, artist: t.artist, duration_ms: t.duration_ms, playlist_id: t.playlist_id,
});

function writeLocal(serverSavedAt, serverPositionMs) {
  if (!user || !hooks) return;
  const { tracks, index, position } = hooks.snapshot();
  const before = readLocal();
  const record = {
    tracks: tracks.map(slim),
    index,
    position,
    saved_at: Date.now(),
    // The server's date of this browser's last save: a later one is another device's.
    server_saved_at: serverSavedAt ?? before?.server_saved_at ?? null,
    // Where the server's copy is (shown by nothing; says a save went through).
    server_position_ms: serverPositionMs ?? before?.server_position_ms ?? null,
  };
  try {
    localStorage.setItem(storageKey(), JSON.stringify(record));
  } catch { /* storage full or refused: the server copy still works */ }
  lastLocal = Date.now();
}

/** What the server keeps: at most 1000 tracks, the current one among them. */
function body() {
  const { tracks, index, position } = hooks.snapshot();
  let from = 0;
  if (tracks.length > MAX_TRACKS) from = Math.min(Math.max(0, index), tracks.length - MAX_TRACKS);
  const kept = tracks.slice(from, from + MAX_TRACKS);
  // Nothing playing (a failed track, the current one removed): the queue from its start.
  const current = index >= 0 ? tracks[index] : null;
  return {
    track_ids: kept.map((t) => t.track_id),
    current_track: kept.length ? (current ?? kept[0]).track_id : null,
    position_ms: current ? Math.max(0, Math.round((position || 0) * 1000)) : 0,
  };
}

function saveToServer({ leaving = false } = {}) {
  if (!user || !hooks) return;
  const json = body();
  const text = JSON.stringify(json);
  if (text === lastSent) return;
  if (sending && !leaving) {
    again = true;
    return;
  }
  lastServer = Date.now();
  const request = api('/me/play-queue', { method: 'PUT', json, keepalive: leaving })
    .then((answer) => {
      lastSent = text;
      writeLocal(answer?.saved_at ?? null, json.position_ms);
    })
    // The next save tries again; the local copy keeps the place meanwhile.
    .catch(() => {});
  if (leaving) return;
  sending = request.finally(() => {
    sending = null;
    if (again) {
      again = false;
      saveToServer();
    }
  });
}

/** The player says what changed: 'track', 'pause', 'queue' or 'tick' (playing on). */
export function changed(kind) {
  if (!user || !hooks) return;
  const now = Date.now();
  if (kind === 'tick') {
    if (now - lastLocal >= LOCAL_EVERY_MS) writeLocal();
    if (now - lastServer >= EVERY_MS) saveToServer();
    return;
  }
  writeLocal();
  clearTimeout(editTimer);
  if (kind === 'queue') editTimer = setTimeout(saveToServer, EDIT_DELAY_MS);
  else saveToServer();
}

/** The listener chose something: a restore still on its way keeps out of it. */
export function touched() { generation += 1; }

async function restore() {
  const mine = ++generation;
  const local = readLocal();
  if (local?.tracks?.length && hooks.isEmpty()) {
    hooks.restore({ tracks: local.tracks, index: local.index, position: local.position });
  }
  let server;
  try {
    server = await api('/me/play-queue');
  } catch {
    return; // this browser's copy (if any) stands
  }
  if (mine !== generation || !user || !server?.saved) return;
  lastSent = JSON.stringify({
    track_ids: server.tracks.map((t) => t.track_id),
    current_track: server.current_index != null ? server.tracks[server.current_index].track_id : null,
    position_ms: server.position_ms,
  });
  const theirs = Date.parse(server.changed_at) || 0;
  const ours = Date.parse(local?.server_saved_at ?? '') || 0;
  if (local?.tracks?.length && theirs <= ours) return;
  if (!server.tracks.length) return;
  hooks.restore({
    tracks: server.tracks,
    index: server.current_index ?? 0,
    position: (server.position_ms || 0) / 1000,
  });
  writeLocal(server.changed_at, server.position_ms);
}

/** `player`: {snapshot(), restore(saved), isEmpty()}. */
export function setup(player) {
  hooks = player;
  onSession((signedIn) => {
    if (signedIn) {
      if (user === signedIn.id) return;
      user = signedIn.id;
      lastSent = '';
      restore();
    } else {
      // Signed out: this browser forgets the queue (the server keeps it for next time).
      if (user) localStorage.removeItem(storageKey());
      user = null;
      clearTimeout(editTimer);
    }
  });
  window.addEventListener('pagehide', () => {
    writeLocal();
    saveToServer({ leaving: true });
  });
}

// Playlists (issue 19, ADR 27): the list of mine and others' public ones (create, import
// an M3U8 file), one playlist (play, queue, rename, describe, make public, delete, export,
// remove an entry, reorder by drag or Alt+↑/↓), others' public ones read-only with "Copy
// to my playlists", and the "Add to playlist" dialog the track menus open (`pick`).
// Edits go one after another (`later`), so a burst of moves reaches the server in order.

import { api } from './api.js';
import * as player from './player.js';
import { explain } from './messages.js';
import { $, h, say, toast, formatTime } from './ui.js';

const PAGE = 500;
const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
const minutes = (ms) => formatTime(ms / 1000);

// ---------------------------------------------------------------- the list

function listRow(p) {
  const kind = p.owned ? (p.public ? 'public' : 'private') : 'shared with everyone';
  return h('li', { class: 'track playlist-item', dataset: { playlistId: p.id } },
    h('a', { class: 'meta', href: `#/playlist/${p.id}` },
      h('span', { class: 'title' }, p.name),
      h('span', { class: 'artist' }, `${plural(p.track_count, 'track', 'tracks')} · ${minutes(p.duration_ms)} · ${kind}`)),
    h('button', {
      type: 'button', class: 'icon small', title: 'Play', 'aria-label': `Play ${p.name}`,
      disabled: !p.track_count, onclick: () => playFrom(p.id, 0),
    }, '▶'));
}

export async function showList() {
  const message = $('#playlists-message');
  if (!$('#playlists-mine').children.length) say(message, 'Loading your playlists…');
  try {
    const { playlists } = await api('/playlists');
    const mine = playlists.filter((p) => p.owned);
    const shared = playlists.filter((p) => !p.owned);
    if (message.dataset.kind !== 'ok') say(message, '');
    $('#playlists-mine').replaceChildren(...mine.map(listRow));
    $('#playlists-public').replaceChildren(...shared.map(listRow));
    $('#playlists-mine-empty').hidden = mine.length > 0;
    $('#playlists-public-empty').hidden = shared.length > 0;
  } catch (error) {
    say(message, `Could not load your playlists. ${explain(error)}`, 'error');
  }
}

async function create(event) {
  event.preventDefault();
  const input = $('#playlist-new-name');
  const name = input.value.trim();
  if (!name) return;
  try {
    const created = await api('/playlists', { method: 'POST', json: { name } });
    input.value = '';
    window.location.hash = `#/playlist/${created.id}`;
  } catch (error) {
    say($('#playlists-message'), `Could not create “${name}”. ${explain(error)}`, 'error');
  }
}

async function importFile(event) {
  event.preventDefault();
  const [file] = $('#playlist-import-file').files;
  const message = $('#playlists-message');
  const unmatched = $('#playlist-unmatched');
  if (!file) return;
  const name = file.name.replace(/\.m3u8?$/i, '').trim() || 'Imported playlist';
  say(message, `Importing “${name}”…`);
  unmatched.replaceChildren();
  unmatched.hidden = true;
  try {
    const text = await file.text();
    const answer = await api(`/playlists/import?name=${encodeURIComponent(name)}`, {
      method: 'POST', body: text, headers: { 'Content-Type': 'audio/x-mpegurl' },
    });
    event.target.reset();
    say(message, `Imported “${name}”: ${plural(answer.matched, 'track', 'tracks')} found in your library`
      + `${answer.unmatched.length ? `, ${answer.unmatched.length} not found (below)` : ''}.`, 'ok');
    if (answer.unmatched.length) {
      unmatched.hidden = false;
      unmatched.append(
        h('h3', {}, 'Not in your library'),
        h('ul', { class: 'unmatched', 'aria-label': 'Entries not found in your library' },
          ...answer.unmatched.map((u) => h('li', {},
            `Entry ${u.line}: ${[u.artist, u.title].filter(Boolean).join(' – ') || u.location}`,
            u.artist || u.title ? h('span', { class: 'hint' }, ` (${u.location})`) : null))),
      );
    }
    unmatched.prepend(h('p', {}, h('a', { href: `#/playlist/${answer.id}` }, `Open “${name}”`)));
    unmatched.hidden = false;
    showList();
  } catch (error) {
    say(message, `Could not import this file. ${explain(error)}`, 'error');
  }
}

// ---------------------------------------------------------------- one playlist

// What is shown: the playlist, its entries loaded so far, and edits on their way.
const open = { id: null, playlist: null, entries: [], more: false, generation: 0, pending: 0 };
let dragged = -1;
let saving = Promise.resolve();

/** A track as the player knows it; someone else's plays through their playlist. */
const asTrack = (e, playlistId, owned) => ({
  track_id: e.track_id, title: e.title, artist: e.artists.join(', '), duration_ms: e.duration_ms,
  cover_url: e.cover_url, playlist_id: owned ? undefined : playlistId,
});

async function page(id, offset) {
  return api(`/playlists/${id}?limit=${PAGE}&offset=${offset}`);
}

/** Every playable track of a playlist, in order (all pages). */
async function tracksOf(id) {
  const tracks = [];
  for (let offset = 0; ; offset += PAGE) {
    const body = await page(id, offset);
    tracks.push(...body.entries.filter((e) => e.available).map((e) => asTrack(e, id, body.owned)));
    if (body.entries.length < PAGE) return tracks;
  }
}

/** Plays a playlist from its `entryIndex`th entry (the open one as shown). */
async function playFrom(id, entryIndex) {
  try {
    let tracks;
    let at = 0;
    if (open.id === id && open.playlist) {
      at = open.entries.slice(0, entryIndex).filter((e) => e.available).length;
      tracks = open.more ? await tracksOf(id)
        : open.entries.filter((e) => e.available).map((e) => asTrack(e, id, open.playlist.owned));
    } else {
      tracks = await tracksOf(id);
    }
    if (tracks.length) player.playList(tracks, Math.min(at, tracks.length - 1));
  } catch (error) {
    toast(`Could not play this playlist. ${explain(error)}`);
  }
}

export async function show(id) {
  const generation = ++open.generation;
  const message = $('#playlist-message');
  if (open.id !== id) {
    Object.assign(open, { id, playlist: null, entries: [], more: false });
    $('#playlist-title').textContent = 'Playlist';
    $('#playlist-sub').textContent = '';
    $('#playlist-description').textContent = '';
    $('#playlist-entries').replaceChildren();
    $('#playlist-actions').hidden = true;
    $('#playlist-edit').hidden = true;
    say(message, 'Loading…');
  }
  try {
    const body = await page(id, 0);
    if (generation !== open.generation) return;
    open.playlist = body;
    open.entries = body.entries;
    open.more = body.entries.length === PAGE;
    say(message, body.entries.length ? '' : (body.owned
      ? 'No tracks yet: add some from a track’s or an album’s ⋯ menu (Add to playlist).' : 'This playlist is empty.'));
    renderHead();
    renderEntries();
  } catch (error) {
    if (generation !== open.generation) return;
    say(message, error.status === 404 ? 'There is no such playlist, or it is not shared.'
      : `Could not load this playlist. ${explain(error)}`, 'error');
  }
}

async function more() {
  const generation = open.generation;
  try {
    const body = await page(open.id, open.entries.length);
    if (generation !== open.generation) return;
    open.entries = open.entries.concat(body.entries);
    open.more = body.entries.length === PAGE;
    renderEntries();
  } catch (error) {
    say($('#playlist-message'), `Could not load more. ${explain(error)}`, 'error');
  }
}

function renderHead() {
  const p = open.playlist;
  $('#playlist-title').textContent = p.name;
  const kind = p.owned ? (p.public ? 'Public: everyone can play and copy it' : 'Private') : 'Someone’s public playlist (read-only)';
  $('#playlist-sub').textContent = `${plural(p.track_count, 'track', 'tracks')} · ${minutes(p.duration_ms)} · ${kind}`;
  $('#playlist-description').textContent = p.description;
  $('#playlist-actions').hidden = false;
  $('#playlist-play').disabled = !p.track_count;
  for (const id of ['#playlist-edit-open', '#playlist-delete']) $(id).hidden = !p.owned;
  $('#playlist-copy').hidden = p.owned;
  $('#playlist-queue').replaceChildren(queueMenu(p));
}

function queueMenu(p) {
  const menu = h('details', { class: 'menu' });
  const act = (what) => async (event) => {
    event.preventDefault();
    menu.open = false;
    const tracks = await tracksOf(p.id).catch((error) => { toast(explain(error)); return []; });
    if (!tracks.length) return;
    if (what === 'next') player.playNext(tracks); else player.addToQueue(tracks);
    toast(`${what === 'next' ? 'Playing next' : 'Added to queue'}: ${p.name} (${plural(tracks.length, 'track', 'tracks')})`);
  };
  menu.append(
    h('summary', { class: 'icon small', title: 'More', 'aria-label': `More for ${p.name}` }, '⋯'),
    h('div', { class: 'menu-items', role: 'group', 'aria-label': `Queue ${p.name}` },
      h('button', { type: 'button', onclick: act('next') }, 'Play next'),
      h('button', { type: 'button', onclick: act('add') }, 'Add to queue')));
  return menu;
}

function entryRow(entry, index, count, owned) {
  const title = entry.available ? (entry.title || entry.track_id) : 'Unavailable track';
  const artist = entry.available ? entry.artists.join(', ') : 'no longer in the owner’s library';
  const item = h('li', {
    class: `track playlist-row${owned ? ' movable' : ''}${entry.available ? '' : ' unavailable'}`,
    tabindex: owned ? '0' : null,
    draggable: owned ? 'true' : null,
    'aria-label': owned ? `${index + 1}. ${title}. Alt+Up or Alt+Down moves it` : null,
    dataset: { index: String(index), entry: String(entry.entry), trackId: entry.track_id },
  },
  owned ? h('span', { class: 'grip', 'aria-hidden': 'true' }, '⠿') : null,
  h('span', { class: 'track-no' }, String(index + 1)),
  h('button', {
    type: 'button', class: 'link meta', 'aria-label': `Play ${title}`, disabled: !entry.available,
    onclick: () => playFrom(open.id, index),
  },
  h('span', { class: 'title' }, title),
  h('span', { class: 'artist' }, artist)),
  h('span', { class: 'time track-duration' }, entry.available ? minutes(entry.duration_ms) : ''));
  if (!owned) return item;
  item.addEventListener('dragstart', (event) => {
    dragged = index;
    event.dataTransfer.effectAllowed = 'move';
    event.dataTransfer.setData('text/plain', String(index));
    item.classList.add('dragging');
  });
  item.addEventListener('dragend', () => item.classList.remove('dragging'));
  item.addEventListener('dragover', (event) => { if (dragged >= 0) event.preventDefault(); });
  item.addEventListener('drop', (event) => {
    event.preventDefault();
    if (dragged >= 0 && dragged !== index) move(dragged, index);
    dragged = -1;
  });
  item.addEventListener('keydown', (event) => {
    if (!event.altKey || event.target !== item) return;
    if (event.key === 'ArrowUp' && index > 0) { event.preventDefault(); move(index, index - 1, true); }
    if (event.key === 'ArrowDown' && index + 1 < count) { event.preventDefault(); move(index, index + 1, true); }
  });
  item.append(
    h('button', {
      type: 'button', class: 'icon small', title: 'Move up', 'aria-label': `Move ${title} up`,
      disabled: index === 0, onclick: () => move(index, index - 1),
    }, '↑'),
    h('button', {
      type: 'button', class: 'icon small', title: 'Move down', 'aria-label': `Move ${title} down`,
      disabled: index + 1 === count, onclick: () => move(index, index + 1),
    }, '↓'),
    h('button', {
      type: 'button', class: 'icon small danger', title: 'Remove from the playlist',
      'aria-label': `Remove ${title} (number ${index + 1}) from the playlist`, onclick: () => removeEntry(index),
    }, '✕'));
  return item;
}

function renderEntries() {
  const list = $('#playlist-entries');
  const { entries } = open;
  const owned = open.playlist?.owned;
  list.replaceChildren(...entries.map((e, i) => entryRow(e, i, entries.length, owned)));
  list.dataset.pending = String(open.pending);
  $('#playlist-more').hidden = !open.more;
}

/** Runs `request` after the edits before it; a failure reloads the server's order. */
function later(request, failed) {
  open.pending += 1;
  $('#playlist-entries').dataset.pending = String(open.pending);
  const id = open.id;
  saving = saving.then(request).catch((error) => {
    say($('#playlist-message'), `${failed} ${explain(error)}`, 'error');
    if (open.id === id) show(id);
  }).finally(() => {
    open.pending -= 1;
    $('#playlist-entries').dataset.pending = String(open.pending);
  });
}

function move(from, to, focus = false) {
  const { entries } = open;
  const [entry] = entries.splice(from, 1);
  entries.splice(to, 0, entry);
  renderEntries();
  if (focus) $(`#playlist-entries li[data-index="${to}"]`)?.focus();
  const title = entry.title || entry.track_id;
  say($('#playlist-announce'), `${title} moved to number ${to + 1} of ${entries.length}.`);
  const id = open.id;
  later(() => api(`/playlists/${id}/entries/${entry.entry}/move`, { method: 'POST', json: { to } }),
    `Could not move “${title}”.`);
}

function removeEntry(index) {
  const [entry] = open.entries.splice(index, 1);
  open.playlist.track_count -= 1;
  renderEntries();
  renderHead();
  const title = entry.title || entry.track_id;
  say($('#playlist-announce'), `${title} removed.`);
  const id = open.id;
  later(() => api(`/playlists/${id}/entries/${entry.entry}`, { method: 'DELETE' }), `Could not remove “${title}”.`);
}

async function saveDetails(event) {
  event.preventDefault();
  const p = open.playlist;
  const name = $('#playlist-edit-name').value.trim();
  const description = $('#playlist-edit-description').value.trim();
  const isPublic = $('#playlist-edit-public').checked;
  const change = {};
  if (name !== p.name) change.name = name;
  if (description !== p.description) change.description = description;
  if (isPublic !== p.public) change.public = isPublic;
  const message = $('#playlist-edit-message');
  if (!Object.keys(change).length) { $('#playlist-edit').hidden = true; return; }
  try {
    await api(`/playlists/${p.id}`, { method: 'PATCH', json: change });
    Object.assign(p, change);
    say(message, '');
    $('#playlist-edit').hidden = true;
    renderHead();
    say($('#playlist-message'), 'Saved.', 'ok');
  } catch (error) {
    say(message, `Could not save. ${explain(error)}`, 'error');
  }
}

function openEdit() {
  const p = open.playlist;
  $('#playlist-edit-name').value = p.name;
  $('#playlist-edit-description').value = p.description;
  $('#playlist-edit-public').checked = p.public;
  say($('#playlist-edit-message'), '');
  $('#playlist-edit').hidden = false;
  $('#playlist-edit-name').focus();
}

async function deletePlaylist() {
  const p = open.playlist;
  if (!window.confirm(`Delete the playlist “${p.name}”? Its tracks stay in your library.`)) return;
  try {
    await api(`/playlists/${p.id}`, { method: 'DELETE' });
    say($('#playlists-message'), `Deleted “${p.name}”.`, 'ok');
    window.location.hash = '#/playlists';
  } catch (error) {
    say($('#playlist-message'), `Could not delete it. ${explain(error)}`, 'error');
  }
}

async function copy() {
  const p = open.playlist;
  try {
    const created = await api('/playlists', { method: 'POST', json: { name: p.name, description: p.description, copy_of: p.id } });
    toast(`Copied “${p.name}” to your playlists.`);
    window.location.hash = `#/playlist/${created.id}`;
  } catch (error) {
    say($('#playlist-message'), `Could not copy it. ${explain(error)}`, 'error');
  }
}

async function exportFile() {
  const p = open.playlist;
  try {
    const text = await api(`/playlists/${p.id}/m3u8`, { text: true });
    const link = h('a', {
      href: URL.createObjectURL(new Blob([text], { type: 'audio/x-mpegurl' })),
      download: `${p.name.replace(/[\\/:*?"<>|]+/g, '_')}.m3u8`,
    });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  } catch (error) {
    say($('#playlist-message'), `Could not export it. ${explain(error)}`, 'error');
  }
}

// ---------------------------------------------------------------- "Add to playlist"

let picking = null; // { label, tracks, albumId }

/** Opens the dialog that adds `tracks` (or the album `albumId`) to a playlist of mine. */
export async function pick(label, tracks, albumId) {
  picking = { label, tracks, albumId };
  const dialog = $('#playlist-pick');
  $('#playlist-pick-heading').textContent = `Add “${label}” to a playlist`;
  const message = $('#playlist-pick-message');
  const list = $('#playlist-pick-list');
  list.replaceChildren();
  say(message, 'Loading your playlists…');
  $('#playlist-pick-name').value = '';
  dialog.showModal();
  try {
    const { playlists } = await api('/playlists');
    const mine = playlists.filter((p) => p.owned);
    say(message, mine.length ? '' : 'You have no playlists yet: name a new one below.');
    list.replaceChildren(...mine.map((p) => h('li', {},
      h('button', { type: 'button', class: 'ghost small', onclick: () => addTo(p) },
        `${p.name} (${plural(p.track_count, 'track', 'tracks')})`))));
  } catch (error) {
    say(message, `Could not load your playlists. ${explain(error)}`, 'error');
  }
}

const what = () => (picking.albumId ? { album_id: picking.albumId } : { track_ids: picking.tracks.map((t) => t.track_id) });

async function addTo(p) {
  try {
    await api(`/playlists/${p.id}/tracks`, { method: 'POST', json: what() });
    $('#playlist-pick').close();
    toast(`Added “${picking.label}” to ${p.name}.`);
    if (open.id === p.id && !$('#view-playlist').hidden) show(p.id);
  } catch (error) {
    say($('#playlist-pick-message'), `Could not add it. ${explain(error)}`, 'error');
  }
}

async function addToNew(event) {
  event.preventDefault();
  const name = $('#playlist-pick-name').value.trim();
  if (!name) return;
  try {
    await api('/playlists', { method: 'POST', json: { name, ...what() } });
    $('#playlist-pick').close();
    toast(`Added “${picking.label}” to the new playlist ${name}.`);
  } catch (error) {
    say($('#playlist-pick-message'), `Could not create it. ${explain(error)}`, 'error');
  }
}

export function setup() {
  $('#playlist-new').addEventListener('submit', create);
  $('#playlist-import').addEventListener('submit', importFile);
  $('#playlist-more').addEventListener('click', more);
  $('#playlist-play').addEventListener('click', () => playFrom(open.id, 0));
  $('#playlist-edit-open').addEventListener('click', openEdit);
  $('#playlist-edit').addEventListener('submit', saveDetails);
  $('#playlist-edit-cancel').addEventListener('click', () => { $('#playlist-edit').hidden = true; });
  $('#playlist-delete').addEventListener('click', deletePlaylist);
  $('#playlist-copy').addEventListener('click', copy);
  $('#playlist-export').addEventListener('click', exportFile);
  $('#playlist-pick-form').addEventListener('submit', addToNew);
  $('#playlist-pick-cancel').addEventListener('click', () => $('#playlist-pick').close());
}

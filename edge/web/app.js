// Jukebox web app: the shell (session, navigation), search and import, the library and
// the queue. The sign-in screens live in auth.js, the jobs in jobs.js, the player bar in
// player.js, the queue view in queue.js, the saved queue in resume.js, Apps & devices in
// apps.js, the admin pages in admin.js, playlists in playlists.js, subscriptions in
// subscriptions.js, the wording of errors in messages.js.

import * as API from './api.js';
import { api, onSession } from './api.js';
import * as auth from './auth.js';
import * as jobsView from './jobs.js';
import * as player from './player.js';
import * as admin from './admin.js';
import * as apps from './apps.js';
import * as account from './account.js';
import * as identities from './identities.js';
import * as music from './music.js';
import * as favourites from './favourites.js';
import * as queueView from './queue.js';
import * as playlistsView from './playlists.js';
import * as collections from './collections.js';
import * as subscriptions from './subscriptions.js';
import { explain, loadSettings } from './messages.js';
import {
  $, $$, h, say, toast, formatTime, trackId, trackTitle, trackArtist, trackDuration,
} from './ui.js';

let me = null;

// ---------------------------------------------------------------- navigation

const views = [
  'library', 'artists', 'artist', 'albums', 'album', 'favourites', 'playlists', 'playlist', 'search', 'subscriptions',
  'jobs', 'queue',
  'apps', 'admin',
];

function route() {
  if (!me) return;
  const [, named, id] = window.location.hash.match(/^#\/(\w+)(?:\/([\w-]+))?/) || [];
  let view = named || 'library';
  if (!views.includes(view) || (view === 'admin' && !isAdmin())) view = 'library';
  if (['artist', 'album', 'playlist'].includes(view) && !id) view = `${view}s`;
  for (const name of views) $(`#view-${name}`).hidden = name !== view;
  // An artist's or album's page belongs to its list in the navigation.
  const section = { artist: 'artists', album: 'albums', playlist: 'playlists' }[view] ?? view;
  for (const link of $$('nav a')) {
    if (link.dataset.view === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (view === 'artists') music.showArtists();
  if (view === 'artist') music.showArtist(id);
  if (view === 'albums') music.showAlbums();
  if (view === 'album') music.showAlbum(id);
  if (view === 'favourites') favourites.show();
  if (view === 'playlists') playlistsView.showList();
  if (view === 'playlist') playlistsView.show(id);
  if (view === 'library') loadLibrary();
  if (view === 'jobs') jobsView.loadJobs();
  if (view === 'subscriptions') subscriptions.show();
  if (view === 'queue') queueView.render();
  if (view === 'apps') { apps.show(); account.show(me); identities.show(); }
  if (view === 'admin') admin.show();
}

const isAdmin = () => (me?.roles ?? []).includes('admin');

function signedIn(user) {
  me = user;
  $('#auth-screen').hidden = true;
  $('#app-screen').hidden = false;
  $('#whoami').textContent = user.email;
  $('#admin-link').hidden = !isAdmin();
  jobsView.setUser(user);
  route();
  jobsView.loadJobs({ quiet: true });
  document.body.dataset.ready = 'signed-in';
}

function signedOut() {
  const was = me;
  me = null;
  library.items = [];
  library.cursor = null;
  library.query = null;
  shownCovers.clear();
  jobsView.setUser(null);
  collections.close();
  player.reset();
  $('#toast').hidden = true;
  auth.show(was ? 'You are signed out.' : '');
  document.body.dataset.ready = 'signed-out';
}

async function signOut() {
  const button = $('#signout');
  button.disabled = true;
  try {
    await API.signOut();
  } catch (error) {
    // The server session lives on: say so rather than pretend.
    toast(`You are still signed in: Jukebox could not end your session. ${explain(error)}`);
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- search & import

async function search(event) {
  event.preventDefault();
  const q = $('#search-q').value.trim();
  const message = $('#search-message');
  const list = $('#search-results');
  if (!q) return;
  say(message, 'Searching…');
  list.replaceChildren();
  try {
    const body = await api(`/songs/search?q=${encodeURIComponent(q)}`);
    const results = body.results ?? [];
    say(message, results.length ? `${results.length} results for “${body.query ?? q}”` : `Nothing found for “${q}”.`);
    list.replaceChildren(...results.map(resultItem));
  } catch (error) {
    say(message, explain(error), 'error');
  }
}

function resultItem(hit) {
  const button = h('button', {
    type: 'button',
    class: 'primary small',
    'aria-label': `Import ${hit.title}`,
    disabled: hit.in_library,
    onclick: async () => {
      button.disabled = true;
      button.textContent = 'Importing…';
      try {
        await jobsView.startImport({ video_id: hit.video_id }, hit.title);
        button.textContent = 'Importing';
      } catch (error) {
        button.disabled = false;
        button.textContent = 'Import';
        say($('#search-message'), `Could not import “${hit.title}”. ${explain(error)}`, 'error');
      }
    },
  }, hit.in_library ? 'In library' : 'Import');
  return h('li', { class: 'result' },
    h('img', { class: 'cover', alt: '', src: hit.thumbnail || '/icon.svg', loading: 'lazy', onerror: fallbackCover }),
    h('div', { class: 'meta' },
      h('div', { class: 'title' }, hit.title),
      h('div', { class: 'artist' }, [hit.channel, hit.duration_s != null ? formatTime(hit.duration_s) : null]
        .filter(Boolean).join(' · '),
      hit.stored && !hit.in_library ? h('span', { class: 'tag' }, 'ready instantly') : null)),
    button);
}

function fallbackCover(event) {
  if (!event.target.src.endsWith('/icon.svg')) event.target.src = '/icon.svg';
}

async function importUrl(event) {
  event.preventDefault();
  const url = $('#import-url').value.trim();
  const button = event.target.querySelector('button[type=submit]');
  button.disabled = true;
  collections.close(); // a new link replaces the list shown before
  try {
    // A list (playlist, channel, feed) is previewed first; one track is imported at once.
    if (collections.isOneTrack(url) || !(await collections.preview(url))) {
      await jobsView.startImport({ url }, url);
    }
    $('#import-url').value = '';
  } catch (error) {
    delete $('#import-message').dataset.jobId;
    say($('#import-message'), `Could not import this link. ${explain(error)}`, 'error');
  } finally {
    button.disabled = false;
  }
}

async function upload(event) {
  event.preventDefault();
  const { files } = $('#upload-file');
  if (!files.length) return;
  await jobsView.uploadFiles(files);
  event.target.reset();
}

/** Files dropped anywhere on the page are uploaded. */
function setupDrop() {
  const zone = $('#drop-zone');
  let depth = 0;
  const carriesFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes('Files');
  document.addEventListener('dragenter', (event) => {
    if (!me || !carriesFiles(event)) return;
    depth += 1;
    zone.hidden = false;
  });
  document.addEventListener('dragleave', () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.hidden = true;
  });
  document.addEventListener('dragover', (event) => {
    if (me && carriesFiles(event)) event.preventDefault();
  });
  document.addEventListener('drop', (event) => {
    depth = 0;
    zone.hidden = true;
    if (!me || !event.dataTransfer?.files.length) return;
    event.preventDefault();
    window.location.hash = '#/search';
    jobsView.uploadFiles(event.dataTransfer.files);
  });
}

// ---------------------------------------------------------------- library

// GET /api/library?q=&sort=added|title|artist|duration&cursor=&limit= answers
// {items: [{track_id, title, artist, duration_ms, has_cover, cover_url?, added_at}],
// next_cursor}; `cover_url` is a signed, short-lived link to the cover picture.
// A cursor belongs to the query that produced it, so "Load more" reuses that query.
const library = { items: [], cursor: null, query: null, stale: true, generation: 0 };
const LIBRARY_PAGE = 50;

async function loadLibrary({ more = false } = {}) {
  const message = $('#library-message');
  if (more && !library.cursor) return;
  const generation = ++library.generation;
  let query = library.query;
  if (!more) {
    query = new URLSearchParams({ limit: String(LIBRARY_PAGE), sort: $('#library-sort').value || 'added' });
    const q = $('#library-q').value.trim();
    if (q) query.set('q', q);
  }
  const params = new URLSearchParams(query);
  if (more) params.set('cursor', library.cursor);
  if (!more) say(message, library.items.length ? '' : 'Loading your library…');
  let body;
  try {
    body = await api(`/library?${params}`);
  } catch (error) {
    if (generation === library.generation) say(message, `Could not load your library. ${explain(error)}`, 'error');
    return;
  } finally {
    if (generation === library.generation) library.stale = false;
  }
  if (generation !== library.generation) return;
  if (!Array.isArray(body?.items)) {
    say(message, 'Could not load your library: the server gave an answer this page does not understand.', 'error');
    return;
  }
  library.query = query;
  library.items = more ? library.items.concat(body.items) : body.items;
  library.cursor = body.next_cursor;
  const q = query.get('q');
  say(message, library.items.length ? ''
    : (q ? `Nothing in your library matches “${q}”.` : 'Your library is empty. Search or paste a link to import music.'));
  renderLibrary();
}

function renderLibrary() {
  const list = $('#library-list');
  list.replaceChildren(...library.items.map((track, index) => {
    const duration = trackDuration(track);
    const title = trackTitle(track);
    const playing = player.current() && trackId(player.current()) === trackId(track);
    return h('li', { class: `track${playing ? ' playing' : ''}`, dataset: { trackId: trackId(track) } },
      h('button', {
        type: 'button', class: 'cover-button', 'aria-label': `Play ${title}`,
        onclick: () => player.playList(library.items, index),
      },
      coverFor(track),
      h('span', { class: 'overlay', 'aria-hidden': 'true' }, '▶')),
      h('div', { class: 'meta' },
        h('div', { class: 'title' }, title),
        h('div', { class: 'artist' }, trackArtist(track))),
      h('span', { class: 'time track-duration' }, duration != null ? formatTime(duration) : ''),
      favourites.starButton('track', trackId(track), track.starred, title),
      queueView.trackMenu(title, () => [track]),
      h('button', {
        type: 'button', class: 'icon small', title: 'Edit details', 'aria-label': `Edit details of ${title}`,
        onclick: () => music.editDetails(track, () => loadLibrary()),
      }, '✎'),
      h('button', {
        type: 'button', class: 'icon small danger', title: 'Remove from library', 'aria-label': `Remove ${title} from your library`,
        onclick: () => removeTrack(track),
      }, '✕'));
  }));
  $('#library-more').hidden = !library.cursor;
}

// Rows are built anew on every change (a track played, queued, removed). A cover already
// shown is moved into the new row as it is: not fetched again, and not lost once its
// signed link (a few minutes) has expired.
const shownCovers = new Map(); // track id -> <img>

function coverFor(track) {
  const id = trackId(track);
  const shown = shownCovers.get(id);
  if (shown?.complete && shown.naturalWidth > 0 && !shown.src.endsWith('/icon.svg')) return shown;
  const img = h('img', {
    class: 'cover', alt: '', src: track.cover_url || '/icon.svg', decoding: 'async', onerror: fallbackCover,
  });
  if (track.cover_url) shownCovers.set(id, img);
  return img;
}

async function removeTrack(track) {
  const title = trackTitle(track);
  if (!window.confirm(`Remove “${title}” from your library?`)) return;
  try {
    await api(`/library/${encodeURIComponent(trackId(track))}`, { method: 'DELETE' });
    library.items = library.items.filter((t) => trackId(t) !== trackId(track));
    player.forget(trackId(track));
    jobsView.trackRemoved(trackId(track));
    renderLibrary();
    say($('#library-message'), `Removed “${title}”.`, 'ok');
  } catch (error) {
    say($('#library-message'), `Could not remove “${title}”. ${explain(error)}`, 'error');
  }
}

/** Plays a track from the Jobs view (the library may not list it yet). */
function playTrackId(id, label) {
  const found = library.items.find((t) => trackId(t) === id);
  player.enqueue(found ?? { track_id: id, title: label || jobsView.labelOf(id) || id });
  player.playAt(player.queue().length - 1);
}

// ---------------------------------------------------------------- start

function debounce(fn, ms) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

function setupApp() {
  $('#signout').addEventListener('click', signOut);
  $('#search-form').addEventListener('submit', search);
  $('#url-form').addEventListener('submit', importUrl);
  $('#upload-form').addEventListener('submit', upload);
  $('#library-filter').addEventListener('submit', (e) => { e.preventDefault(); loadLibrary(); });
  $('#library-q').addEventListener('input', debounce(() => loadLibrary(), 250));
  $('#library-sort').addEventListener('change', () => loadLibrary());
  $('#library-more').addEventListener('click', () => loadLibrary({ more: true }));
  $('#library-play-all').addEventListener('click', () => {
    if (library.items.length) player.playList(library.items, 0);
  });
  queueView.setup();
  queueView.offerPlaylists(playlistsView.pick);
  playlistsView.setup();
  subscriptions.setup();
  player.onQueueChange(() => {
    if (!$('#view-queue').hidden) queueView.render();
    if (!$('#view-library').hidden) renderLibrary();
  });
  jobsView.setup({
    play: playTrackId,
    completed: () => {
      library.stale = true;
      if (!$('#view-library').hidden) loadLibrary();
    },
    isAdmin,
    audit: (type, id) => { window.location.hash = '#/admin'; admin.audit(type, id); },
  });
  collections.setup({
    completed: () => {
      library.stale = true;
      if (!$('#view-library').hidden) loadLibrary();
    },
  });
  setupDrop();
  window.addEventListener('hashchange', route);
  document.addEventListener('keydown', (event) => {
    if (event.key === '/' && me && !event.target.closest('input, textarea, select')) {
      event.preventDefault();
      window.location.hash = '#/search';
      $('#search-q').focus();
    }
  });
  // Move focus to the view for keyboard and screen-reader users after navigation.
  $$('nav a').forEach((link) => link.addEventListener('click', () => {
    setTimeout(() => $('#content').focus({ preventScroll: true }), 0);
  }));
}

onSession((user) => (user ? signedIn(user) : signedOut()));

async function start() {
  await loadSettings();
  auth.setup();
  setupApp();
  player.setup();
  admin.setup();
  apps.setup();
  account.setup();
  music.setup();
  // A mailed link (reset, new address) keeps the signed-out screen, where it answers.
  const stay = await auth.verifyFromLink();
  const restored = !stay && await API.restore().catch(() => false);
  if (!restored) {
    const refused = API.refusal;
    // A session that simply ended needs no words; a refused one does.
    auth.show(refused && refused.status === 403 ? explain(refused) : '', 'error');
    document.body.dataset.ready = 'signed-out';
  }
}

window.addEventListener('unhandledrejection', (event) => {
  toast(event.reason instanceof API.ApiError ? explain(event.reason)
    : 'Something went wrong on this page. Reload it and try again.');
});

start();

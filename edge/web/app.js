// Jukebox web app: the shell (sign-in, navigation), search and import, the jobs panel and
// the library. The player bar lives in player.js, the admin pages in admin.js.

import * as API from './api.js';
import { api, events, onSession } from './api.js';
import * as player from './player.js';
import * as admin from './admin.js';
import {
  $, $$, h, say, toast, formatTime, trackId, trackTitle, trackArtist, trackDuration,
} from './ui.js';

let me = null;

// ---------------------------------------------------------------- sign-in screens

function showAuthTab(which) {
  const signup = which === 'signup';
  $('#tab-signin').setAttribute('aria-selected', String(!signup));
  $('#tab-signup').setAttribute('aria-selected', String(signup));
  $('#signin-form').hidden = signup;
  $('#signup-form').hidden = !signup;
}

function authMessage(message, kind = '', extra = null) {
  const node = $('#auth-message');
  say(node, message, kind);
  if (extra) node.append(' ', extra);
}

async function googleConfigured() {
  try {
    const response = await fetch('/api/auth/google/login', { method: 'HEAD', redirect: 'manual' });
    return response.type === 'opaqueredirect' || (response.status >= 300 && response.status < 400);
  } catch {
    return false;
  }
}

function setupAuth() {
  $('#tab-signin').addEventListener('click', () => showAuthTab('signin'));
  $('#tab-signup').addEventListener('click', () => showAuthTab('signup'));
  $('#signin-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    authMessage('Signing in…');
    try {
      await API.signIn(form.get('email'), form.get('password'));
      authMessage('');
      event.target.reset();
    } catch (error) {
      authMessage(error.message, 'error');
    }
  });
  $('#signup-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    authMessage('Creating your account…');
    try {
      const body = await API.signUp(form.get('email'), form.get('password'));
      $('#signin-email').value = form.get('email');
      event.target.reset();
      showAuthTab('signin');
      if (body?.verification_token) {
        // Development servers (EXPOSE_VERIFICATION_TOKEN) hand the link over directly.
        authMessage('Account created. Confirm your address to sign in:', 'ok',
          h('a', { href: `/?verify=${encodeURIComponent(body.verification_token)}`, id: 'verify-link' },
            'confirm my email'));
      } else {
        authMessage('Account created. Check your mail for the link that confirms your address, then sign in.', 'ok');
      }
    } catch (error) {
      authMessage(error.message, 'error');
    }
  });
  googleConfigured().then((yes) => { $('#google-signin').hidden = !yes; });
}

async function verifyFromLink() {
  const token = new URLSearchParams(window.location.search).get('verify');
  if (!token) return;
  window.history.replaceState(null, '', '/');
  authMessage('Confirming your email address…');
  try {
    await API.verifyEmail(token);
    authMessage('Your email address is confirmed. You can sign in.', 'ok');
  } catch (error) {
    authMessage(`${error.message}`, 'error');
  }
}

// ---------------------------------------------------------------- navigation

const views = ['library', 'search', 'jobs', 'queue', 'admin'];

function route() {
  if (!me) return;
  let view = (window.location.hash.match(/^#\/(\w+)/) || [])[1] || 'library';
  if (!views.includes(view) || (view === 'admin' && !isAdmin())) view = 'library';
  for (const name of views) $(`#view-${name}`).hidden = name !== view;
  for (const link of $$('nav a')) {
    if (link.dataset.view === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (view === 'library') loadLibrary();
  if (view === 'jobs') loadJobs();
  if (view === 'queue') renderQueue();
  if (view === 'admin') admin.show();
}

const isAdmin = () => (me?.roles ?? []).includes('admin');

function signedIn(user) {
  me = user;
  $('#auth-screen').hidden = true;
  $('#app-screen').hidden = false;
  $('#whoami').textContent = user.email;
  $('#admin-link').hidden = !isAdmin();
  route();
  loadJobs({ quiet: true });
}

function signedOut() {
  const was = me;
  me = null;
  library.items = [];
  library.cursor = null;
  library.query = null;
  shownCovers.clear();
  stopAllJobStreams();
  player.reset();
  $('#toast').hidden = true;
  $('#app-screen').hidden = true;
  $('#auth-screen').hidden = false;
  if (was) authMessage('You are signed out.');
  $('#signin-email').focus();
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
    say(message, error.message, 'error');
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
        await startImport({ video_id: hit.video_id }, hit.title);
        button.textContent = 'Importing';
      } catch (error) {
        button.disabled = false;
        button.textContent = 'Import';
        say($('#search-message'), error.message, 'error');
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

/** Requests an import and follows its job. */
async function startImport(body, label) {
  const answer = await api('/songs/import', { method: 'POST', json: body });
  trackJob({ job_id: answer.job_id, status: answer.status ?? 'requested', label });
  toast(`Import started: ${label}`);
  return answer;
}

async function importUrl(event) {
  event.preventDefault();
  const url = $('#import-url').value.trim();
  try {
    await startImport({ url }, url);
    say($('#import-message'), 'Import started; follow it under Jobs.', 'ok');
    $('#import-url').value = '';
  } catch (error) {
    say($('#import-message'), error.message, 'error');
  }
}

async function upload(event) {
  event.preventDefault();
  const file = $('#upload-file').files[0];
  if (!file) return;
  const form = new FormData();
  form.append('file', file, file.name);
  say($('#import-message'), `Uploading ${file.name}…`);
  try {
    const answer = await api('/songs/upload', { method: 'POST', body: form });
    trackJob({ job_id: answer.job_id, status: 'requested', label: file.name });
    say($('#import-message'), 'Upload received; follow the import under Jobs.', 'ok');
    event.target.reset();
  } catch (error) {
    say($('#import-message'), error.message, 'error');
  }
}

// ---------------------------------------------------------------- jobs

const jobs = new Map(); // job_id -> {job, node, controller}
const finished = (status) => status === 'completed' || status === 'failed';
const stageNames = {
  requested: 'Queued', waiting: 'Waiting for another download', downloading: 'Downloading',
  transcoding: 'Transcoding', storing: 'Storing', completed: 'Done', failed: 'Failed',
};

function jobLabel(job) {
  return job.label || job.source?.value || job.job_id;
}

function renderJob(entry) {
  const { job } = entry;
  const percent = job.status === 'completed' ? 100 : job.percent ?? 0;
  const node = entry.node ?? h('li', { class: 'job' });
  node.dataset.status = job.status;
  node.dataset.jobId = job.job_id;
  node.replaceChildren(
    h('div', { class: 'meta' },
      h('div', { class: 'title' }, jobLabel(job)),
      h('div', { class: 'artist job-stage' },
        `${stageNames[job.status] ?? job.status}${finished(job.status) ? '' : ` · ${percent}%`}`),
      job.error ? h('div', { class: 'job-error', role: 'alert' }, job.error.message || job.error.code) : null),
    h('progress', {
      max: '100', value: String(percent), 'aria-label': `Progress of ${jobLabel(job)}`,
      class: job.status === 'failed' ? 'failed' : '',
    }),
    job.status === 'completed' && job.track_id
      ? h('button', { type: 'button', class: 'ghost small', onclick: () => playTrackId(job.track_id), 'aria-label': `Play ${jobLabel(job)}` }, 'Play')
      : null);
  entry.node = node;
  const list = $('#jobs-list');
  if (!node.isConnected) list.prepend(node);
  updateBadge();
}

function updateBadge() {
  const busy = [...jobs.values()].filter((e) => !finished(e.job.status)).length;
  const badge = $('#jobs-badge');
  badge.hidden = busy === 0;
  badge.textContent = String(busy);
  badge.setAttribute('aria-label', `${busy} running`);
}

function trackJob(job) {
  let entry = jobs.get(job.job_id);
  if (!entry) {
    entry = { job };
    jobs.set(job.job_id, entry);
  } else {
    entry.job = { ...entry.job, ...job };
  }
  renderJob(entry);
  if (!finished(entry.job.status) && !entry.controller) follow(entry);
}

/** Follows one job's live events until it finishes. */
async function follow(entry) {
  entry.controller = new AbortController();
  const id = entry.job.job_id;
  let attempts = 0;
  while (!finished(entry.job.status) && me && !entry.controller.signal.aborted) {
    try {
      await events(`/jobs/${id}/events`, (name, data) => {
        if (name === 'progress' && data && !finished(entry.job.status)) {
          const status = data.status ?? data.stage ?? entry.job.status;
          entry.job = { ...entry.job, status: finished(status) ? entry.job.status : status, percent: data.percent ?? entry.job.percent };
        } else if (name === 'job' && data) {
          const before = entry.job.status;
          entry.job = { ...entry.job, ...data, label: entry.job.label };
          if (finished(data.status) && !finished(before)) jobFinished(entry.job);
        }
        renderJob(entry);
      }, entry.controller.signal);
      attempts = 0;
    } catch (error) {
      if (error.name === 'AbortError') break;
      if (error.status === 404 && attempts < 20) {
        // A job just requested appears in the read model within a moment.
      } else if (attempts > 30) {
        say($('#jobs-message'), `Lost track of a job: ${error.message}`, 'error');
        break;
      }
      attempts += 1;
    }
    if (!finished(entry.job.status)) await new Promise((r) => { setTimeout(r, 500); });
  }
  entry.controller = null;
}

function jobFinished(job) {
  if (job.status === 'completed') {
    toast(`Imported: ${jobLabel(job)}`);
    library.stale = true;
    if (!$('#view-library').hidden) loadLibrary();
  } else {
    toast(`Import failed: ${job.error?.message ?? 'unknown reason'}`);
  }
}

function stopAllJobStreams() {
  for (const entry of jobs.values()) entry.controller?.abort();
  jobs.clear();
  $('#jobs-list').replaceChildren();
  updateBadge();
}

async function loadJobs({ quiet = false } = {}) {
  if (!quiet) say($('#jobs-message'), '');
  try {
    const body = await api('/jobs?limit=50');
    const list = body.jobs ?? [];
    // Oldest first so that prepend() leaves the newest on top.
    for (const job of list.slice().reverse()) {
      const entry = jobs.get(job.job_id);
      if (entry) {
        entry.job = { ...entry.job, ...job, label: entry.job.label };
        renderJob(entry);
        if (!finished(entry.job.status) && !entry.controller) follow(entry);
      } else {
        trackJob(job);
      }
    }
    if (!jobs.size) say($('#jobs-message'), 'No imports yet. Search or paste a link to import music.');
  } catch (error) {
    if (!quiet) say($('#jobs-message'), error.message, 'error');
  }
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
    if (generation === library.generation) say(message, `Could not load your library: ${error.message}`, 'error');
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
      h('button', {
        type: 'button', class: 'icon small', title: 'Add to queue', 'aria-label': `Add ${title} to the queue`,
        onclick: () => { player.enqueue(track); toast(`Added to queue: ${title}`); },
      }, '+'),
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
    renderLibrary();
    say($('#library-message'), `Removed “${title}”.`, 'ok');
  } catch (error) {
    say($('#library-message'), `Could not remove “${title}”: ${error.message}`, 'error');
  }
}

function playTrackId(id) {
  const found = library.items.find((t) => trackId(t) === id);
  const label = [...jobs.values()].find((e) => e.job.track_id === id)?.job.label;
  player.enqueue(found ?? { track_id: id, title: label || id });
  player.playAt(player.queue().length - 1);
}

// ---------------------------------------------------------------- queue

function renderQueue() {
  const items = player.queue();
  say($('#queue-message'), items.length ? '' : 'The queue is empty. Play something from your library.');
  $('#queue-list').replaceChildren(...items.map((track, index) => {
    const title = trackTitle(track);
    const now = index === player.currentIndex();
    return h('li', { class: `track${now ? ' playing' : ''}`, 'aria-current': now ? 'true' : null },
      h('button', { type: 'button', class: 'link meta', onclick: () => player.playAt(index), 'aria-label': `Play ${title}` },
        h('span', { class: 'title' }, `${index + 1}. ${title}`),
        h('span', { class: 'artist' }, trackArtist(track))),
      h('button', {
        type: 'button', class: 'icon small', 'aria-label': `Remove ${title} from the queue`,
        onclick: () => player.removeFromQueue(index),
      }, '✕'));
  }));
}

// ---------------------------------------------------------------- start

function debounce(fn, ms) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

function setupApp() {
  $('#signout').addEventListener('click', () => API.signOut());
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
  $('#queue-clear').addEventListener('click', () => player.clearQueue());
  player.onQueueChange(() => {
    if (!$('#view-queue').hidden) renderQueue();
    if (!$('#view-library').hidden) renderLibrary();
  });
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
  setupAuth();
  setupApp();
  player.setup();
  admin.setup();
  await verifyFromLink();
  const restored = await API.refresh().catch(() => false);
  if (!restored) {
    $('#auth-screen').hidden = false;
    document.body.dataset.ready = 'signed-out';
  } else {
    document.body.dataset.ready = 'signed-in';
  }
}

window.addEventListener('unhandledrejection', (event) => {
  if (event.reason?.message) toast(event.reason.message);
});

start();

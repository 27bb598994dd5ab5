// The player bar: one <audio> element fed by signed stream URLs, a queue, keyboard
// shortcuts and the Media Session API (hardware keys, lock screen). A signed URL lives
// STREAM_URL_TTL_S (5 minutes by default): before playing on or seeking with a link that
// has expired (paused for long, or after sleep), the player fetches a fresh one and keeps
// its place; a link that expires while it plays is replaced when the stream refuses it.
// Shuffle plays a shuffled order of the queue (each track once per cycle), repeat is
// off, all or one; the queue is saved for the next visit and other devices (resume.js).

import { trackPlayProgress } from './plays.js';
import { api } from './api.js';
import { explain } from './messages.js';
import * as savedQueue from './resume.js';
import { $, formatTime, toast, trackId, trackTitle, trackArtist } from './ui.js';

const audio = $('#audio');
const seek = $('#seek');
const volume = $('#volume');
const playButton = $('#playpause');
const muteButton = $('#mute');

const ICONS = {
  play: '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M8 5v14l11-7z"/></svg>',
  pause: '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M6 5h4v14H6zm8 0h4v14h-4z"/></svg>',
  volume: '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M3 9v6h4l5 5V4L7 9zm13.5 3A4.5 4.5 0 0 0 14 8v8a4.5 4.5 0 0 0 2.5-4z"/></svg>',
  muted: '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M3 9v6h4l5 5V4L7 9zm13.6 3 2.7-2.7-1.4-1.4-2.7 2.7-2.7-2.7-1.4 1.4 2.7 2.7-2.7 2.7 1.4 1.4 2.7-2.7 2.7 2.7 1.4-1.4z"/></svg>',
};

const state = {
  queue: [], index: -1, seeking: false,
  // The loaded link: whose it is and when it expires (ms since the epoch).
  urlFor: null, expiresAt: 0,
  // Where playback was (audio.currentTime is lost when a link fails) and whether it
  // should be playing.
  position: 0, wantPlay: false,
  refreshing: null, lastRefresh: 0,
  // Shuffle: the play order, the queue's entries shuffled (null when off).
  shuffle: false, order: null, repeat: 'off',
  loads: 0,
};
const REPEATS = ['off', 'all', 'one'];
// Renew a link this long before it expires.
const MARGIN_MS = 2000;
const changeListeners = new Set();

export function onQueueChange(fn) { changeListeners.add(fn); }
/** After the queue or the current track changed; `kind` says what to save how soon. */
function changed(kind = 'queue') {
  changeListeners.forEach((fn) => fn(state));
  if (kind) savedQueue.changed(kind);
}

export function queue() { return state.queue; }
export function current() { return state.queue[state.index] ?? null; }
export function currentIndex() { return state.index; }
export function shuffling() { return state.shuffle; }
export function repeatMode() { return state.repeat; }

// Each queue entry is its own object, so a track queued twice is two entries.
const entry = (track) => ({ ...track });

function shuffled(items) {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i -= 1) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** A new shuffled order of the queue that starts with `first` (when given). */
function orderFrom(first) {
  const rest = shuffled(state.queue.filter((e) => e !== first));
  return first ? [first, ...rest] : rest;
}

/** Where the play order is now: the current entry's place in it. */
const orderPos = () => (state.order ? state.order.indexOf(current()) : -1);

/** The queue index to play after the current one, or -1 (repeat one is the caller's). */
function followingIndex() {
  const n = state.queue.length;
  if (!n) return -1;
  if (state.shuffle) {
    if (!state.order) state.order = orderFrom(current());
    const pos = orderPos();
    if (pos + 1 < state.order.length) return state.queue.indexOf(state.order[pos + 1]);
    if (state.repeat !== 'all') return -1;
    // A new cycle, in a new order that does not start with the track just played.
    const now = current();
    state.order = shuffled(state.queue);
    if (state.order.length > 1 && state.order[0] === now) state.order.push(state.order.shift());
    return state.queue.indexOf(state.order[0]);
  }
  if (state.index + 1 < n) return state.index + 1;
  return state.repeat === 'all' ? 0 : -1;
}

function precedingIndex() {
  if (state.shuffle && state.order) {
    const pos = orderPos();
    return pos > 0 ? state.queue.indexOf(state.order[pos - 1]) : -1;
  }
  if (state.index > 0) return state.index - 1;
  return state.repeat === 'all' && state.queue.length ? state.queue.length - 1 : -1;
}

// {url, expires_at, cover_url?}: signed links to the audio and, when there is one, the
// cover picture (both on the stream role; an <audio> or <img> sends no bearer header).
// A song of someone's public playlist names it: it plays from the owner's library.
async function signedUrls(track) {
  const via = track.playlist_id ? `?playlist=${encodeURIComponent(track.playlist_id)}` : '';
  return api(`/stream/${encodeURIComponent(trackId(track))}${via}`, {
    headers: { Accept: 'application/json' },
  });
}

function busy(on) {
  $('#buffering').hidden = !on;
  playButton.classList.toggle('busy', on);
}

/** After a new link: the indicator stays only while playback waits for data. */
function settled() {
  if (audio.paused || audio.readyState >= 3) busy(false);
}

/** Points the audio element at `signed.url`, at `at` seconds, playing if `play`. */
async function useLink(track, signed, { at = 0, play = false } = {}) {
  state.urlFor = trackId(track);
  state.expiresAt = Date.parse(signed.expires_at) || 0;
  state.position = at;
  state.wantPlay = play;
  audio.src = signed.url;
  if (at) audio.currentTime = at;
  if (play) await audio.play();
}

async function load(index, { autoplay = true, at = 0, quiet = false } = {}) {
  const track = state.queue[index];
  if (!track) return;
  const before = state.index;
  state.index = index;
  // A later load (next, next, next) supersedes this one: its link and its failure too.
  const mine = ++state.loads;
  showNow(track);
  changed(quiet ? null : 'track');
  busy(true);
  try {
    const signed = await signedUrls(track);
    if (mine !== state.loads) return;
    showCover(track, signed.cover_url);
    await useLink(track, signed, { at, play: autoplay });
    settled();
  } catch (error) {
    if (mine !== state.loads) return;
    busy(false);
    if (error.name === 'NotAllowedError') {
      toast('Press play to start the music.');
      return;
    }
    toast(`Cannot play “${trackTitle(track)}”. ${explain(error)}`);
    // Back to what was there (still playing, if it was), not a title that is not playing.
    if (state.urlFor && state.queue[before] && trackId(state.queue[before]) === state.urlFor) {
      state.index = before;
      showNow(state.queue[before]);
    } else {
      state.index = -1;
      showNothing();
    }
    changed();
  }
}

/** A fresh link for the current track, at `at`, playing if `play`; one at a time. */
function renew({ at, play }) {
  const track = current();
  if (!track) return Promise.resolve();
  if (!state.refreshing) {
    state.lastRefresh = Date.now();
    busy(true);
    state.refreshing = signedUrls(track)
      .then((signed) => (current() === track ? useLink(track, signed, { at, play }) : null))
      .then(settled)
      .catch((error) => {
        busy(false);
        if (error.name !== 'NotAllowedError') toast(`Cannot play “${trackTitle(track)}”. ${explain(error)}`);
      })
      .finally(() => { state.refreshing = null; });
  }
  return state.refreshing;
}

const stale = () => Boolean(state.urlFor) && Date.now() > state.expiresAt - MARGIN_MS;

/** Plays on, with a fresh link first when this one has expired. */
async function resume() {
  if (stale()) return renew({ at: audio.currentTime || state.position, play: true });
  state.wantPlay = true;
  return audio.play().catch((error) => {
    if (error.name === 'NotAllowedError') toast('Press play to start the music.');
  });
}

function showNow(track) {
  $('#now-title').textContent = trackTitle(track);
  $('#now-artist').textContent = trackArtist(track);
  document.title = `${trackTitle(track)} · Jukebox`;
  showCover(track, track.cover_url);
}

/** The cover in the player bar and on the lock screen; the app icon when there is none. */
function showCover(track, coverUrl) {
  $('#now-cover').src = coverUrl || '/icon.svg';
  if ('mediaSession' in navigator) {
    navigator.mediaSession.metadata = new MediaMetadata({
      title: trackTitle(track),
      artist: trackArtist(track),
      artwork: coverUrl
        ? [{ src: coverUrl, type: 'image/jpeg' }]
        : [{ src: '/icon.svg', type: 'image/svg+xml' }],
    });
  }
}

/** Replaces the queue with `tracks` and plays from `start`. */
export function playList(tracks, start = 0) {
  savedQueue.touched();
  state.queue = tracks.map(entry);
  state.order = state.shuffle ? orderFrom(state.queue[start]) : null;
  return load(start);
}

/** Adds tracks to the end of the queue (and plays the first when nothing is playing).
 * Shuffling, each lands at a random place among the tracks still to come. */
export function addToQueue(tracks) {
  savedQueue.touched();
  const added = tracks.map(entry);
  state.queue.push(...added);
  if (state.order) {
    for (const e of added) {
      const from = orderPos() + 1;
      state.order.splice(from + Math.floor(Math.random() * (state.order.length - from + 1)), 0, e);
    }
  }
  changed();
  if (state.index < 0 && added.length) load(state.queue.indexOf(added[0]));
}

/** Puts tracks right after the current one, in the queue and in the shuffled order. */
export function playNext(tracks) {
  savedQueue.touched();
  const added = tracks.map(entry);
  const at = state.index < 0 ? state.queue.length : state.index + 1;
  state.queue.splice(at, 0, ...added);
  if (state.order) state.order.splice(orderPos() + 1, 0, ...added);
  changed();
  if (state.index < 0 && added.length) load(at);
}

/** Adds a track to the end of the queue (and plays it when nothing is playing). */
export function enqueue(track) { addToQueue([track]); }

/** Moves the entry at `from` to `to` in the queue; the current track plays on. */
export function moveInQueue(from, to) {
  const n = state.queue.length;
  if (from === to || from < 0 || to < 0 || from >= n || to >= n) return;
  const playing = current();
  const [moved] = state.queue.splice(from, 1);
  state.queue.splice(to, 0, moved);
  state.index = playing ? state.queue.indexOf(playing) : -1;
  changed();
}

export function toggleShuffle() {
  state.shuffle = !state.shuffle;
  state.order = state.shuffle ? orderFrom(current()) : null;
  localStorage.setItem('jukebox.shuffle', state.shuffle ? '1' : '0'); // a preference
  showModes();
  changed(null);
}

export function cycleRepeat() {
  state.repeat = REPEATS[(REPEATS.indexOf(state.repeat) + 1) % REPEATS.length];
  localStorage.setItem('jukebox.repeat', state.repeat); // a preference
  showModes();
  changed(null);
}

function showModes() {
  const shuffle = $('#shuffle');
  shuffle.setAttribute('aria-pressed', String(state.shuffle));
  shuffle.classList.toggle('on', state.shuffle);
  const repeat = $('#repeat');
  repeat.dataset.mode = state.repeat;
  repeat.classList.toggle('on', state.repeat !== 'off');
  repeat.setAttribute('aria-label', `Repeat: ${state.repeat}`);
  repeat.title = `Repeat: ${state.repeat} (R)`;
}

export function removeFromQueue(index) {
  savedQueue.touched();
  const [gone] = state.queue.splice(index, 1);
  if (state.order) state.order = state.order.filter((e) => e !== gone);
  if (index < state.index) state.index -= 1;
  else if (index === state.index) {
    stopAudio();
    state.index = -1;
    showNothing();
  }
  changed();
}

function stopAudio() {
  state.wantPlay = false;
  state.urlFor = null;
  audio.pause();
  audio.removeAttribute('src');
  audio.load();
  busy(false);
}

function showNothing() {
  $('#now-title').textContent = 'Nothing playing';
  $('#now-artist').textContent = '';
  $('#now-cover').src = '/icon.svg';
  document.title = 'Jukebox';
}

/** Forgets a track that left the library. */
export function forget(id) {
  for (let i = state.queue.length - 1; i >= 0; i -= 1) {
    if (trackId(state.queue[i]) === id) removeFromQueue(i);
  }
}

export function clearQueue({ quiet = false } = {}) {
  if (!quiet) savedQueue.touched();
  stopAudio();
  state.queue = [];
  state.order = null;
  state.index = -1;
  showNothing();
  changed(quiet ? null : 'queue');
}

/** Plays the entry at `index`. Shuffling, it comes next in the order, so the tracks
 * not played yet in this cycle still come after it. */
export function playAt(index) {
  savedQueue.touched();
  const chosen = state.queue[index];
  if (state.order && chosen) {
    state.order = state.order.filter((e) => e !== chosen);
    state.order.splice(orderPos() + 1, 0, chosen);
  }
  return load(index);
}

/** Puts a saved queue back, paused at its place (browsers refuse to autoplay). */
export function restoreQueue({ tracks, index, position }) {
  state.queue = tracks.map(entry);
  state.index = -1;
  const at = Math.min(Math.max(0, index), state.queue.length - 1);
  state.order = state.shuffle ? orderFrom(state.queue[at]) : null;
  changed(null);
  return load(at, { autoplay: false, at: position, quiet: true });
}

/** What the saved queue holds: the entries, the current one and where in it. */
export function snapshot() {
  return { tracks: state.queue, index: state.index, position: state.position };
}

export function togglePlay() {
  if (state.index < 0) {
    if (state.queue.length) load(state.order ? state.queue.indexOf(state.order[0]) : 0);
    return;
  }
  if (audio.paused) resume();
  else pause();
}

function pause() {
  state.wantPlay = false;
  audio.pause();
}

export function next() {
  const following = followingIndex();
  if (following >= 0) load(following);
}

export function previous() {
  // Like most players: back to the start unless we are at the very beginning.
  const preceding = precedingIndex();
  if (audio.currentTime > 3 || preceding < 0) seekTo(0);
  else load(preceding);
}

export function seekTo(seconds) {
  if (!Number.isFinite(audio.duration)) return;
  const at = Math.min(Math.max(0, seconds), audio.duration);
  state.position = at;
  // Seeking may need bytes not fetched yet: an expired link would refuse them.
  if (stale()) renew({ at, play: !audio.paused });
  else audio.currentTime = at;
}

function setVolume(v) {
  audio.volume = Math.min(1, Math.max(0, v));
  audio.muted = false;
  volume.value = String(audio.volume);
  localStorage.setItem('jukebox.volume', String(audio.volume)); // a preference, not a secret
}

function updatePlayButton() {
  const playing = !audio.paused;
  playButton.innerHTML = playing ? ICONS.pause : ICONS.play;
  playButton.setAttribute('aria-label', playing ? 'Pause' : 'Play');
  if ('mediaSession' in navigator) navigator.mediaSession.playbackState = playing ? 'playing' : 'paused';
}

function updatePosition() {
  if (!state.refreshing && audio.src && audio.readyState > 0) state.position = audio.currentTime;
  const duration = Number.isFinite(audio.duration) ? audio.duration : 0;
  seek.max = String(duration);
  if (!state.seeking) seek.value = String(audio.currentTime);
  seek.setAttribute('aria-valuetext', `${formatTime(audio.currentTime)} of ${formatTime(duration)}`);
  $('#elapsed').textContent = formatTime(audio.currentTime);
  $('#duration').textContent = formatTime(duration);
  if ('mediaSession' in navigator && duration > 0 && navigator.mediaSession.setPositionState) {
    try {
      navigator.mediaSession.setPositionState({
        duration, playbackRate: audio.playbackRate, position: Math.min(audio.currentTime, duration),
      });
    } catch { /* a position past the end while loading */ }
  }
}

function editing(target) {
  return target.closest('input, textarea, select, [contenteditable="true"]')
    && !(target instanceof HTMLInputElement && target.type === 'range');
}

export function setup() {
  const saved = Number(localStorage.getItem('jukebox.volume'));
  audio.volume = Number.isFinite(saved) && localStorage.getItem('jukebox.volume') !== null ? saved : 0.8;
  volume.value = String(audio.volume);

  // A cover link that fails (expired, removed) falls back to the app icon.
  $('#now-cover').addEventListener('error', (event) => {
    if (!event.target.src.endsWith('/icon.svg')) event.target.src = '/icon.svg';
  });
  playButton.addEventListener('click', togglePlay);
  $('#next').addEventListener('click', next);
  $('#prev').addEventListener('click', previous);
  state.shuffle = localStorage.getItem('jukebox.shuffle') === '1';
  state.repeat = REPEATS.includes(localStorage.getItem('jukebox.repeat')) ? localStorage.getItem('jukebox.repeat') : 'off';
  showModes();
  $('#shuffle').addEventListener('click', toggleShuffle);
  $('#repeat').addEventListener('click', cycleRepeat);
  muteButton.addEventListener('click', () => { audio.muted = !audio.muted; });
  volume.addEventListener('input', () => setVolume(Number(volume.value)));
  seek.addEventListener('input', () => {
    state.seeking = true;
    $('#elapsed').textContent = formatTime(Number(seek.value));
  });
  seek.addEventListener('change', () => {
    state.seeking = false;
    seekTo(Number(seek.value));
  });

  audio.addEventListener('play', updatePlayButton);
  audio.addEventListener('pause', updatePlayButton);
  // A pause is a place worth keeping (the end of a track is followed by a load).
  audio.addEventListener('pause', () => { if (!audio.ended && current()) savedQueue.changed('pause'); });
  // The buffering indicator: on while the element waits for data it was asked for.
  audio.addEventListener('waiting', () => busy(true));
  audio.addEventListener('seeking', () => { if (!audio.paused) busy(true); });
  for (const name of ['playing', 'pause', 'canplay', 'seeked']) {
    audio.addEventListener(name, () => { if (!state.refreshing && (name !== 'canplay' || audio.paused)) busy(false); });
  }
  audio.addEventListener('timeupdate', updatePosition);
  audio.addEventListener('timeupdate', () => trackPlayProgress(current(), audio.currentTime, audio.duration));
  audio.addEventListener('timeupdate', () => { if (!audio.paused) savedQueue.changed('tick'); });
  audio.addEventListener('durationchange', updatePosition);
  audio.addEventListener('loadedmetadata', updatePosition);
  audio.addEventListener('volumechange', () => {
    const silent = audio.muted || audio.volume === 0;
    muteButton.innerHTML = silent ? ICONS.muted : ICONS.volume;
    muteButton.setAttribute('aria-label', audio.muted ? 'Unmute' : 'Mute');
  });
  audio.addEventListener('ended', () => {
    if (state.repeat === 'one') {
      audio.currentTime = 0;
      resume();
      return;
    }
    const following = followingIndex();
    if (following >= 0) load(following);
    else savedQueue.changed('pause');
  });
  audio.addEventListener('error', () => {
    const track = current();
    if (!track || !audio.getAttribute('src') || state.urlFor !== trackId(track)) return;
    // Most often the link expired mid-stream (410): a fresh one, and carry on where we
    // were. The same failure right after a fresh link is something else.
    if (Date.now() - state.lastRefresh > 5000) {
      renew({ at: state.position, play: state.wantPlay });
    } else {
      busy(false);
      toast(`Cannot play “${trackTitle(track)}”. Try again in a moment.`);
    }
  });

  document.addEventListener('keydown', (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (editing(event.target)) return;
    const onButton = event.target.closest('button, a, summary');
    switch (event.key) {
      case ' ':
        if (onButton) return; // Space presses the focused button.
        event.preventDefault(); togglePlay(); break;
      case 'k': case 'K': togglePlay(); break;
      case 'ArrowRight':
        if (event.target === seek || event.target === volume) return;
        event.preventDefault(); seekTo(audio.currentTime + 5); break;
      case 'ArrowLeft':
        if (event.target === seek || event.target === volume) return;
        event.preventDefault(); seekTo(audio.currentTime - 5); break;
      case 'ArrowUp':
        if (event.target === seek || event.target === volume) return;
        event.preventDefault(); setVolume(audio.volume + 0.05); break;
      case 'ArrowDown':
        if (event.target === seek || event.target === volume) return;
        event.preventDefault(); setVolume(audio.volume - 0.05); break;
      case 'n': case 'N': next(); break;
      case 'p': case 'P': previous(); break;
      case 'm': case 'M': audio.muted = !audio.muted; break;
      case 's': case 'S': toggleShuffle(); break;
      case 'r': case 'R': cycleRepeat(); break;
      default:
    }
  });

  if ('mediaSession' in navigator) {
    const handlers = {
      play: () => resume(),
      pause: () => pause(),
      previoustrack: previous,
      nexttrack: next,
      seekbackward: (d) => seekTo(audio.currentTime - (d.seekOffset || 10)),
      seekforward: (d) => seekTo(audio.currentTime + (d.seekOffset || 10)),
      seekto: (d) => seekTo(d.seekTime),
      stop: () => { pause(); seekTo(0); },
    };
    for (const [action, handler] of Object.entries(handlers)) {
      try { navigator.mediaSession.setActionHandler(action, handler); } catch { /* unsupported */ }
    }
  }
  savedQueue.setup({ snapshot, restore: restoreQueue, isEmpty: () => !state.queue.length });
}

/** Stops playback when the session ends (the saved queue stays for the next visit). */
export function reset() { clearQueue({ quiet: true }); }

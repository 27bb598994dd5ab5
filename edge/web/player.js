// The player bar: one <audio> element fed by signed stream URLs, a queue, keyboard
// shortcuts and the Media Session API (hardware keys, lock screen). A signed URL lives
// STREAM_URL_TTL_S (5 minutes by default): before playing on or seeking with a link that
// has expired (paused for long, or after sleep), the player fetches a fresh one and keeps
// its place; a link that expires while it plays is replaced when the stream refuses it.

import { trackPlayProgress } from './plays.js';
import { api } from './api.js';
import { explain } from './messages.js';
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
};
// Renew a link this long before it expires.
const MARGIN_MS = 2000;
const changeListeners = new Set();

export function onQueueChange(fn) { changeListeners.add(fn); }
function changed() { changeListeners.forEach((fn) => fn(state)); }

export function queue() { return state.queue; }
export function current() { return state.queue[state.index] ?? null; }
export function currentIndex() { return state.index; }

// {url, expires_at, cover_url?}: signed links to the audio and, when there is one, the
// cover picture (both on the stream role; an <audio> or <img> sends no bearer header).
async function signedUrls(track) {
  return api(`/stream/${encodeURIComponent(trackId(track))}`, {
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

async function load(index, { autoplay = true, at = 0 } = {}) {
  const track = state.queue[index];
  if (!track) return;
  const before = state.index;
  state.index = index;
  showNow(track);
  changed();
  busy(true);
  try {
    const signed = await signedUrls(track);
    if (state.queue[state.index] === track) showCover(track, signed.cover_url);
    await useLink(track, signed, { at, play: autoplay });
    settled();
  } catch (error) {
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
  state.queue = tracks.slice();
  return load(start);
}

/** Adds a track to the end of the queue (and plays it when nothing is playing). */
export function enqueue(track) {
  state.queue.push(track);
  changed();
  if (state.index < 0) load(state.queue.length - 1);
}

export function removeFromQueue(index) {
  state.queue.splice(index, 1);
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

export function clearQueue() {
  stopAudio();
  state.queue = [];
  state.index = -1;
  showNothing();
  changed();
}

export function playAt(index) { return load(index); }

export function togglePlay() {
  if (state.index < 0) {
    if (state.queue.length) load(0);
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
  if (state.index + 1 < state.queue.length) load(state.index + 1);
}

export function previous() {
  // Like most players: back to the start unless we are at the very beginning.
  if (audio.currentTime > 3 || state.index <= 0) seekTo(0);
  else load(state.index - 1);
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
  // The buffering indicator: on while the element waits for data it was asked for.
  audio.addEventListener('waiting', () => busy(true));
  audio.addEventListener('seeking', () => { if (!audio.paused) busy(true); });
  for (const name of ['playing', 'pause', 'canplay', 'seeked']) {
    audio.addEventListener(name, () => { if (!state.refreshing && (name !== 'canplay' || audio.paused)) busy(false); });
  }
  audio.addEventListener('timeupdate', updatePosition);
  audio.addEventListener('timeupdate', () => trackPlayProgress(current(), audio.currentTime, audio.duration));
  audio.addEventListener('durationchange', updatePosition);
  audio.addEventListener('loadedmetadata', updatePosition);
  audio.addEventListener('volumechange', () => {
    const silent = audio.muted || audio.volume === 0;
    muteButton.innerHTML = silent ? ICONS.muted : ICONS.volume;
    muteButton.setAttribute('aria-label', audio.muted ? 'Unmute' : 'Mute');
  });
  audio.addEventListener('ended', () => {
    if (state.index + 1 < state.queue.length) load(state.index + 1);
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
}

/** Stops playback when the session ends. */
export function reset() { clearQueue(); }

// Whole playlists, channels and feeds (issue 20): a link pasted into "Import from a link"
// that is a list is previewed first (POST /imports/collections/preview: its title, how
// many entries, how many I have, how many the server has stored, the cap and my quota),
// imported on Confirm, then followed (GET /imports/collections/{id}: done / failed /
// remaining) until nothing remains, with a link to its playlist and the skipped entries.

import { api, notePosition } from './api.js';
import { explain, sentence } from './messages.js';
import { $, h, say, toast } from './ui.js';

let hooks = { completed: () => {} };
// The preview on screen, and the generation that stops an older import's polling.
let shown = null;
let generation = 0;

const reasons = {
  private: 'private', deleted: 'deleted', too_long: 'too long', not_audio: 'not audio',
};

/** A link that is surely one track: a YouTube video, or a file with an audio extension. */
export function isOneTrack(url) {
  try {
    const link = new URL(url);
    const host = link.hostname.replace(/^(www|m|music)\./, '');
    if (host === 'youtu.be') return true;
    if (host === 'youtube.com') return link.pathname === '/watch' || link.pathname.startsWith('/shorts/');
    return /\.(mp3|m4a|aac|ogg|oga|opus|flac|wav|webm|mp4)$/i.test(link.pathname);
  } catch {
    return false;
  }
}

export function setup(options) {
  hooks = { ...hooks, ...options };
  $('#collection-confirm').addEventListener('click', confirm);
  $('#collection-cancel').addEventListener('click', close);
}

/** Hides the preview and stops following an import (sign-out, Cancel). */
export function close() {
  generation += 1;
  shown = null;
  $('#collection').hidden = true;
}

const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function fact(label, value) {
  return [h('dt', {}, label), h('dd', {}, String(value))];
}

function skippedList(skipped) {
  const node = $('#collection-skipped');
  node.hidden = !skipped.length;
  node.replaceChildren(
    h('summary', {}, `${plural(skipped.length, 'entry', 'entries')} skipped`),
    h('ul', {}, skipped.map((s) => h('li', {},
      `${s.position}. ${s.title || s.url || 'Untitled'}: ${reasons[s.reason] ?? s.reason}`))),
  );
}

/**
 * Previews a list. Resolves false when the link is one track (the caller imports it as a
 * song); throws the API's error otherwise.
 */
export async function preview(url) {
  const message = $('#import-message');
  say(message, 'Reading the list…');
  let body;
  try {
    body = await api('/imports/collections/preview', { method: 'POST', json: { url } });
  } catch (error) {
    say(message, '');
    if (error.code === 'not_a_collection') return false;
    throw error;
  }
  generation += 1;
  shown = body;
  say(message, '');
  const newTracks = body.importable - body.in_library;
  $('#collection-title').textContent = body.title || body.url;
  $('#collection-facts').replaceChildren(
    ...fact('Entries', body.entry_count),
    ...fact('Already in your library', body.in_library),
    ...fact('Already stored on the server', body.stored),
    ...fact('New to your library', newTracks),
    ...fact('Skipped', body.skipped.length),
  );
  const notes = [body.note, body.quota?.note].filter(Boolean);
  const note = $('#collection-note');
  say(note, notes.map((n) => `${n[0].toUpperCase()}${n.slice(1)}.`).join(' '), body.quota?.note ? 'error' : '');
  skippedList(body.skipped);
  const fits = !body.quota || body.quota.fits >= body.quota.new_tracks;
  const button = $('#collection-confirm');
  button.hidden = false;
  button.disabled = !fits || body.importable === 0;
  button.textContent = `Import ${plural(body.importable, 'entry', 'entries')}`;
  $('#collection-cancel').textContent = 'Cancel';
  $('#collection-progress').hidden = true;
  $('#collection-playlist').hidden = true;
  $('#collection-failed').replaceChildren();
  say($('#collection-status'), body.importable === 0
    ? 'Nothing in this list can be imported.' : 'Check the numbers, then import.');
  $('#collection').hidden = false;
  (button.disabled ? $('#collection-cancel') : button).focus();
  return true;
}

async function confirm() {
  if (!shown) return;
  const { url } = shown;
  const button = $('#collection-confirm');
  const status = $('#collection-status');
  button.disabled = true;
  say(status, 'Starting the import…');
  let answer;
  try {
    answer = await api('/imports/collections/confirm', { method: 'POST', json: { url } });
  } catch (error) {
    button.disabled = false;
    say(status, `Could not import this list. ${explain(error)}`, 'error');
    return;
  }
  button.hidden = true;
  $('#collection-cancel').textContent = 'Close';
  $('#collection-cancel').focus();
  skippedList(answer.skipped ?? []);
  const link = $('#collection-playlist');
  link.href = `#/playlist/${answer.playlist_id}`;
  link.textContent = `Open the playlist “${shown.title || url}”`;
  link.hidden = false;
  const mine = generation;
  await follow(answer, mine);
}

/** Polls the import's progress until nothing remains (or another preview replaces it). */
async function follow(answer, mine) {
  const status = $('#collection-status');
  const bar = $('#collection-progress');
  bar.hidden = false;
  let failures = 0;
  while (mine === generation) {
    let progress;
    try {
      progress = await api(`/imports/collections/${answer.collection_id}`);
      failures = 0;
    } catch (error) {
      failures += 1;
      if (failures > 10) {
        say(status, `Lost track of this import. ${explain(error)} Your imports are listed under Jobs.`, 'error');
        return;
      }
      await new Promise((r) => { setTimeout(r, 1000); });
      continue;
    }
    if (mine !== generation) return;
    const { total, done, failed, remaining } = progress;
    bar.max = Math.max(total, 1);
    bar.value = done + failed;
    const counts = `${done} done · ${failed} failed · ${remaining} remaining`;
    if (remaining === 0) {
      // Reads from here on show every finished entry (the jobs' latest position).
      notePosition(progress.position);
      bar.hidden = true;
      const added = answer.added === 0 ? 'Nothing new: every entry was imported before. ' : '';
      say(status, `${added}Finished: ${counts}.`, failed ? 'error' : 'ok');
      failedList(progress.entries.filter((e) => e.status === 'failed'));
      // On a phone the player bar covers the end of the page: bring the outcome up.
      if (!$('#view-search').hidden) status.scrollIntoView({ block: 'center' });
      hooks.completed();
      if ($('#view-search').hidden) toast(`Imported “${progress.title}”: ${counts}.`);
      return;
    }
    say(status, `Importing: ${counts}.`);
    await new Promise((r) => { setTimeout(r, 1000); });
  }
}

function failedList(failed) {
  $('#collection-failed').replaceChildren(...failed.map((e) => h('li', {},
    `${e.title || e.track_id}: ${sentence(e.error || 'the import failed')}`)));
}

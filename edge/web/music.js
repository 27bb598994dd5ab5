// Artists and albums (issue 18): grids of my artists and albums, an artist's page with its
// albums, an album's page with its tracks in order (play from there), and "Edit details"
// of a track (PATCH /api/library/{id}: my correction, for my library only).

import { api } from './api.js';
import * as player from './player.js';
import { trackMenu } from './queue.js';
import { explain } from './messages.js';
import { $, h, say, formatTime } from './ui.js';
import { starButton } from './favourites.js';

const PAGE = 60;
const albums = { items: [], sort: 'newest', more: false };

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

function fallbackCover(event) {
  if (!event.target.src.endsWith('/icon.svg')) event.target.src = '/icon.svg';
}

function cover(url, label) {
  return h('img', {
    class: 'card-cover', alt: label, src: url || '/icon.svg', loading: 'lazy', onerror: fallbackCover,
  });
}

function albumCard(album) {
  const year = album.year ? ` · ${album.year}` : '';
  return h('li', { class: 'card', dataset: { albumId: album.id } },
    h('a', { href: `#/album/${album.id}`, 'aria-label': `Album ${album.name} by ${album.artist}` },
      cover(album.cover_url, ''),
      h('span', { class: 'card-title' }, album.name),
      h('span', { class: 'card-sub' }, `${album.artist}${year}`)));
}

// ---------------------------------------------------------------- artists

export async function showArtists() {
  const message = $('#artists-message');
  say(message, 'Loading your artists…');
  try {
    const body = await api('/library/artists?limit=500');
    const items = body?.items ?? [];
    say(message, items.length ? '' : 'No artists yet: import some music first.');
    $('#artists-grid').replaceChildren(...items.map((artist) => h('li', { class: 'card artist-card' },
      h('a', { href: `#/artist/${artist.id}`, 'aria-label': `Artist ${artist.name}` },
        h('span', { class: 'card-initial', 'aria-hidden': 'true' }, artist.name.slice(0, 1).toUpperCase()),
        h('span', { class: 'card-title' }, artist.name),
        h('span', { class: 'card-sub' },
          `${plural(artist.album_count, 'album', 'albums')} · ${plural(artist.track_count, 'track', 'tracks')}`)))));
  } catch (error) {
    say(message, `Could not load your artists. ${explain(error)}`, 'error');
  }
}

export async function showArtist(id) {
  const message = $('#artist-message');
  $('#artist-title').textContent = 'Artist';
  $('#artist-star').replaceChildren();
  $('#artist-albums').replaceChildren();
  say(message, 'Loading…');
  try {
    const artist = await api(`/library/artists/${encodeURIComponent(id)}`);
    $('#artist-title').textContent = artist.name;
    $('#artist-star').replaceChildren(starButton('artist', artist.id, artist.starred, artist.name));
    say(message, `${plural(artist.album_count, 'album', 'albums')} · ${plural(artist.track_count, 'track', 'tracks')}`);
    $('#artist-albums').replaceChildren(...artist.albums.map(albumCard));
  } catch (error) {
    say(message, error.status === 404 ? 'This artist is not in your library.' : `Could not load this artist. ${explain(error)}`, 'error');
  }
}

// ---------------------------------------------------------------- albums

export async function showAlbums({ more = false } = {}) {
  const message = $('#albums-message');
  const sort = $('#albums-sort').value || 'newest';
  const offset = more ? albums.items.length : 0;
  if (!more) say(message, 'Loading your albums…');
  try {
    const body = await api(`/library/albums?sort=${sort}&limit=${PAGE}&offset=${offset}`);
    const items = body?.items ?? [];
    albums.items = more ? albums.items.concat(items) : items;
    albums.more = offset + items.length < (body?.total ?? 0) && sort !== 'random';
    say(message, albums.items.length ? '' : 'No albums yet: import some music first.');
    $('#albums-grid').replaceChildren(...albums.items.map(albumCard));
    $('#albums-more').hidden = !albums.more;
  } catch (error) {
    say(message, `Could not load your albums. ${explain(error)}`, 'error');
  }
}

/** An album's track as the player and the library rows know tracks. */
const asTrack = (t) => ({
  track_id: t.track_id, title: t.title, artist: t.artists.join(', '), duration_ms: t.duration_ms, cover_url: t.cover_url,
  starred: t.starred,
});

export async function showAlbum(id) {
  const message = $('#album-message');
  $('#album-title').textContent = 'Album';
  $('#album-star').replaceChildren();
  $('#album-sub').textContent = '';
  $('#album-tracks').replaceChildren();
  $('#album-play').hidden = true;
  $('#album-menu').replaceChildren();
  say(message, 'Loading…');
  try {
    const album = await api(`/library/albums/${encodeURIComponent(id)}`);
    const tracks = album.tracks.map(asTrack);
    $('#album-title').textContent = album.name;
    $('#album-star').replaceChildren(starButton('album', album.id, album.starred, album.name));
    $('#album-cover').src = album.cover_url || '/icon.svg';
    const minutes = formatTime(album.duration_ms / 1000);
    $('#album-sub').replaceChildren(
      h('a', { href: `#/artist/${album.artist_id}` }, album.artist),
      `${album.year ? ` · ${album.year}` : ''} · ${plural(album.track_count, 'track', 'tracks')} · ${minutes}`);
    say(message, '');
    const play = $('#album-play');
    play.hidden = false;
    play.onclick = () => player.playList(tracks, 0);
    $('#album-menu').replaceChildren(trackMenu(album.name, () => tracks, { albumId: album.id }));
    $('#album-tracks').replaceChildren(...tracks.map((track, index) => h('li', { class: 'track' },
      h('span', { class: 'track-no' }, String(index + 1)),
      h('button', {
        type: 'button', class: 'link meta', 'aria-label': `Play ${track.title}`,
        onclick: () => player.playList(tracks, index),
      },
      h('span', { class: 'title' }, track.title),
      h('span', { class: 'artist' }, track.artist)),
      h('span', { class: 'time' }, formatTime(track.duration_ms / 1000)),
      starButton('track', track.track_id, track.starred, track.title),
      trackMenu(track.title, () => [track]),
      h('button', {
        type: 'button', class: 'icon small', title: 'Edit details', 'aria-label': `Edit details of ${track.title}`,
        onclick: () => editDetails(track, (changed) => afterEdit(id, tracks.length, changed)),
      }, '✎'))));
  } catch (error) {
    say(message, error.status === 404 ? 'This album is not in your library.' : `Could not load this album. ${explain(error)}`, 'error');
  }
}

/** After a correction on an album's page: the album again, or the list when its only
 * track moved to another album (a new album or first artist). */
function afterEdit(id, trackCount, changed) {
  const moved = changed.album !== undefined || changed.artists !== undefined;
  if (moved && trackCount === 1) window.location.hash = '#/albums';
  else showAlbum(id);
}

// ---------------------------------------------------------------- edit details

let saved = null;

/** Opens "Edit details" for `track` ({track_id, title, artist}); `done(changed)` after a
 * save, with the fields sent. */
export function editDetails(track, done) {
  const dialog = $('#edit-dialog');
  $('#edit-title').value = track.title || '';
  $('#edit-artists').value = track.artist || '';
  $('#edit-album').value = '';
  $('#edit-year').value = '';
  say($('#edit-message'), '');
  dialog.dataset.trackId = track.track_id;
  dialog.dataset.title = track.title || '';
  dialog.dataset.artist = track.artist || '';
  saved = done;
  dialog.showModal();
  $('#edit-title').focus();
}

async function save(event) {
  event.preventDefault();
  const dialog = $('#edit-dialog');
  const body = {};
  const title = $('#edit-title').value.trim();
  const artists = $('#edit-artists').value.split(',').map((a) => a.trim()).filter(Boolean);
  const album = $('#edit-album').value.trim();
  const year = $('#edit-year').value.trim();
  if (title !== dialog.dataset.title) body.title = title;
  if (artists.join(', ') !== dialog.dataset.artist) body.artists = artists;
  if (album) body.album = album;
  if (year) body.year = Number(year);
  if (!Object.keys(body).length) { dialog.close(); return; }
  try {
    await api(`/library/${encodeURIComponent(dialog.dataset.trackId)}`, { method: 'PATCH', json: body });
    dialog.close();
    saved?.(body);
  } catch (error) {
    say($('#edit-message'), explain(error), 'error');
  }
}

export function setup() {
  $('#albums-sort').addEventListener('change', () => showAlbums());
  $('#albums-more').addEventListener('click', () => showAlbums({ more: true }));
  $('#edit-form').addEventListener('submit', save);
  $('#edit-cancel').addEventListener('click', () => $('#edit-dialog').close());
}

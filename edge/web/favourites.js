// Favourites (issue 19): a star toggle for tracks, albums and artists (PUT/DELETE
// /api/me/favourites/{kind}/{id}), and the Favourites view: starred tracks, albums and
// artists, then Recently played and Most played (GET /api/me/plays).

import { api } from './api.js';
import * as player from './player.js';
import { explain } from './messages.js';
import { $, h, say, toast, formatTime } from './ui.js';

/** A button that stars or unstars an item; `starred` is its state now (a time or null). */
export function starButton(kind, id, starred, label) {
  const button = h('button', { type: 'button', class: 'icon small star' });
  const show = (on) => {
    button.textContent = on ? '★' : '☆';
    button.classList.toggle('on', on);
    button.setAttribute('aria-pressed', on ? 'true' : 'false');
    button.setAttribute('aria-label', `${on ? 'Unstar' : 'Star'} ${label}`);
    button.title = on ? 'Remove from favourites' : 'Add to favourites';
  };
  let on = Boolean(starred);
  show(on);
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await api(`/me/favourites/${kind}/${encodeURIComponent(id)}`, { method: on ? 'DELETE' : 'PUT' });
      on = !on;
      show(on);
    } catch (error) {
      toast(`Could not change the favourite. ${explain(error)}`);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/** A track as the player and the library rows know tracks. */
const asTrack = (t) => ({
  track_id: t.track_id, title: t.title, artist: t.artists.join(', '), duration_ms: t.duration_ms,
  cover_url: t.cover_url, starred: t.starred,
});

function trackList(node, tracks, extra) {
  const list = tracks.map(asTrack);
  node.replaceChildren(...list.map((track, index) => h('li', { class: 'track', dataset: { trackId: track.track_id } },
    h('button', {
      type: 'button', class: 'link meta', 'aria-label': `Play ${track.title}`,
      onclick: () => player.playList(list, index),
    },
    h('span', { class: 'title' }, track.title),
    h('span', { class: 'artist' }, track.artist)),
    extra ? h('span', { class: 'time plays' }, extra(tracks[index])) : null,
    h('span', { class: 'time' }, formatTime(track.duration_ms / 1000)),
    starButton('track', track.track_id, track.starred, track.title))));
}

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

export async function show() {
  const message = $('#favourites-message');
  say(message, 'Loading your favourites…');
  try {
    const [starred, recent, frequent] = await Promise.all([
      api('/me/favourites?limit=200'),
      api('/me/plays?order=recent&limit=20'),
      api('/me/plays?order=frequent&limit=20'),
    ]);
    const empty = !starred.tracks.length && !starred.albums.length && !starred.artists.length;
    say(message, empty ? 'Nothing starred yet: star a track, an album or an artist with ☆.' : '');
    trackList($('#favourite-tracks'), starred.tracks);
    $('#favourite-albums').replaceChildren(...starred.albums.map((album) => h('li', { class: 'chip' },
      h('a', { href: `#/album/${album.id}` }, `${album.name} · ${album.artist}`),
      starButton('album', album.id, album.starred, album.name))));
    $('#favourite-artists').replaceChildren(...starred.artists.map((artist) => h('li', { class: 'chip' },
      h('a', { href: `#/artist/${artist.id}` }, artist.name),
      starButton('artist', artist.id, artist.starred, artist.name))));
    const when = (t) => (t.last_played ? new Date(t.last_played).toLocaleString() : '');
    trackList($('#recent-tracks'), recent.items, when);
    trackList($('#frequent-tracks'), frequent.items, (t) => plural(t.play_count, 'play', 'plays'));
    $('#recent-empty').hidden = recent.items.length > 0;
    // Each empty section says so, rather than leaving a heading over nothing.
    $('#favourite-tracks-empty').hidden = starred.tracks.length > 0;
    $('#favourite-albums-empty').hidden = starred.albums.length > 0;
    $('#favourite-artists-empty').hidden = starred.artists.length > 0;
    $('#frequent-empty').hidden = frequent.items.length > 0;
  } catch (error) {
    say(message, `Could not load your favourites. ${explain(error)}`, 'error');
  }
}

// The play queue view (reorder by dragging or with the move buttons and Alt+↑/↓, remove,
// clear) and the "Play next" / "Add to queue" / "Add to playlist…" menu that track rows
// and albums share (`trackMenu`).

import * as player from './player.js';
import { $, h, say, toast, trackTitle, trackArtist } from './ui.js';

const plural = (n) => (n === 1 ? '1 track' : `${n} tracks`);

// "Add to playlist…" (playlists.js registers it; it imports nothing from here).
let addToPlaylist = null;
export function offerPlaylists(pick) { addToPlaylist = pick; }

/**
 * A small menu for `label` (a track's or an album's name): "Play next", "Add to queue"
 * and "Add to playlist…". `tracks()` answers the tracks (an array; may be a promise);
 * `albumId` names a whole album, which a playlist takes as one addition.
 */
export function trackMenu(label, tracks, { albumId } = {}) {
  const menu = h('details', { class: 'menu' });
  const act = (what) => async (event) => {
    event.preventDefault();
    menu.open = false;
    const list = await tracks();
    if (!list?.length) return;
    if (what === 'playlist') {
      addToPlaylist?.(list.length === 1 ? trackTitle(list[0]) : label, list, albumId);
    } else if (what === 'next') {
      player.playNext(list);
      toast(`Playing next: ${list.length === 1 ? trackTitle(list[0]) : `${label} (${plural(list.length)})`}`);
    } else {
      player.addToQueue(list);
      toast(`Added to queue: ${list.length === 1 ? trackTitle(list[0]) : `${label} (${plural(list.length)})`}`);
    }
  };
  menu.append(
    h('summary', { class: 'icon small', title: 'More', 'aria-label': `More for ${label}` }, '⋯'),
    h('div', { class: 'menu-items', role: 'group', 'aria-label': `Queue ${label}` },
      h('button', { type: 'button', onclick: act('next') }, 'Play next'),
      h('button', { type: 'button', onclick: act('add') }, 'Add to queue'),
      addToPlaylist ? h('button', { type: 'button', onclick: act('playlist') }, 'Add to playlist…') : null),
  );
  return menu;
}

// A menu closes when anything else is clicked or Escape is pressed.
function closeMenus(except) {
  for (const open of document.querySelectorAll('details.menu[open]')) {
    if (open !== except) open.open = false;
  }
}

let dragged = -1;

function move(from, to, focus = false) {
  player.moveInQueue(from, to);
  if (focus) $(`#queue-list li[data-index="${to}"]`)?.focus();
}

function row(track, index, count) {
  const title = trackTitle(track);
  const now = index === player.currentIndex();
  const item = h('li', {
    class: `track queue-row${now ? ' playing' : ''}`,
    'aria-current': now ? 'true' : null,
    draggable: 'true',
    tabindex: '0',
    'aria-label': `${index + 1}. ${title}. Alt+Up or Alt+Down moves it`,
    dataset: { index: String(index), trackId: track.track_id },
    ondragstart: (event) => {
      dragged = index;
      event.dataTransfer.effectAllowed = 'move';
      event.dataTransfer.setData('text/plain', String(index));
      item.classList.add('dragging');
    },
    ondragend: () => item.classList.remove('dragging'),
    ondragover: (event) => { if (dragged >= 0) event.preventDefault(); },
    ondrop: (event) => {
      event.preventDefault();
      if (dragged >= 0) move(dragged, index);
      dragged = -1;
    },
    onkeydown: (event) => {
      if (!event.altKey || event.target !== item) return;
      if (event.key === 'ArrowUp' && index > 0) { event.preventDefault(); move(index, index - 1, true); }
      if (event.key === 'ArrowDown' && index + 1 < count) { event.preventDefault(); move(index, index + 1, true); }
    },
  },
  h('span', { class: 'grip', 'aria-hidden': 'true' }, '⠿'),
  h('button', { type: 'button', class: 'link meta', onclick: () => player.playAt(index), 'aria-label': `Play ${title}` },
    h('span', { class: 'title' }, `${index + 1}. ${title}`),
    h('span', { class: 'artist' }, trackArtist(track))),
  h('button', {
    type: 'button', class: 'icon small', title: 'Move up', 'aria-label': `Move ${title} up`,
    disabled: index === 0, onclick: () => move(index, index - 1),
  }, '↑'),
  h('button', {
    type: 'button', class: 'icon small', title: 'Move down', 'aria-label': `Move ${title} down`,
    disabled: index + 1 === count, onclick: () => move(index, index + 1),
  }, '↓'),
  h('button', {
    type: 'button', class: 'icon small', title: 'Remove', 'aria-label': `Remove ${title} from the queue`,
    onclick: () => player.removeFromQueue(index),
  }, '✕'));
  return item;
}

export function render() {
  const items = player.queue();
  const modes = [player.shuffling() ? 'shuffle on' : '', player.repeatMode() !== 'off' ? `repeat ${player.repeatMode()}` : '']
    .filter(Boolean).join(', ');
  say($('#queue-message'), items.length ? `${plural(items.length)}${modes ? ` · ${modes}` : ''}`
    : 'The queue is empty. Play something from your library.');
  const focused = document.activeElement?.closest?.('#queue-list li')?.dataset.index;
  $('#queue-list').replaceChildren(...items.map((track, index) => row(track, index, items.length)));
  if (focused !== undefined) $(`#queue-list li[data-index="${focused}"]`)?.focus();
}

export function setup() {
  $('#queue-clear').addEventListener('click', () => player.clearQueue());
  document.addEventListener('click', (event) => closeMenus(event.target.closest('details.menu')));
  document.addEventListener('keydown', (event) => { if (event.key === 'Escape') closeMenus(null); });
}

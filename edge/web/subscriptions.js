// Subscriptions (issue 20, ADR 40): follow a playlist, channel or feed. New entries are
// imported by the server's own checks; this page lists them with their state, and says
// when a site asked us to slow down and when the next try is.

import { api } from './api.js';
import { explain } from './messages.js';
import { $, h, say, formatDate } from './ui.js';

export function setup() {
  $('#subscription-new').addEventListener('submit', async (event) => {
    event.preventDefault();
    const url = $('#subscription-url').value.trim();
    const latest = Number.parseInt($('#subscription-latest').value, 10);
    const json = Number.isFinite(latest) ? { url, latest } : { url };
    say($('#subscriptions-message'), '');
    try {
      await api('/subscriptions', { method: 'POST', json });
      $('#subscription-url').value = '';
      say($('#subscriptions-message'), 'Subscribed. The first check runs in a moment.', 'ok');
      await load();
    } catch (error) {
      say($('#subscriptions-message'), explain(error), 'error');
    }
  });
}

export function show() {
  load();
}

/** "14:05" today, else with the date: when the next try is. */
function when(value) {
  const at = new Date(value);
  const time = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  return at.toDateString() === new Date().toDateString() ? time : `${formatDate(value)} ${time}`;
}

function siteName(url) {
  try {
    const host = new URL(url).hostname.replace(/^www\./, '');
    return /(^|\.)(youtube\.com|youtu\.be)$/.test(host) ? 'YouTube' : host;
  } catch {
    return 'The site';
  }
}

/** A sentence on what the subscription does now. */
export function status(s) {
  if (s.state === 'paused') return 'Paused: no checks until you resume it.';
  if (s.state === 'backing_off') {
    const next = s.retry_at ? `; next try at ${when(s.retry_at)}` : '';
    if (s.rate_limited) return `${siteName(s.url)} asked us to slow down${next}.`;
    return `The last check failed (${s.reason ?? 'no reason given'})${next}.`;
  }
  const last = s.last_check
    ? `Last check found ${s.last_check.found}, imported ${s.last_check.imported} new. `
    : 'Not checked yet. ';
  return s.next_check_at ? `${last}Next check at ${when(s.next_check_at)}.` : last;
}

let refresh = null;

async function load() {
  const list = $('#subscriptions-list');
  clearTimeout(refresh);
  try {
    const answer = await api('/subscriptions');
    const subscriptions = answer?.subscriptions;
    if (!Array.isArray(subscriptions)) throw new Error('unexpected answer');
    list.replaceChildren(...subscriptions.map(row));
    if (!subscriptions.length) say($('#subscriptions-message'), 'No subscriptions yet.');
    // A first check runs within seconds of subscribing: show its outcome when it comes.
    const waiting = subscriptions.some((s) => s.checks === 0 && s.state === 'active');
    if (waiting && !$('#view-subscriptions').hidden) refresh = setTimeout(load, 2000);
  } catch (error) {
    say($('#subscriptions-message'), explain(error), 'error');
  }
}

function row(s) {
  const name = s.title || s.url;
  const paused = s.state === 'paused';
  return h('li', { class: `subscription-row state-${s.state}`, 'data-id': s.id },
    h('div', {},
      h('strong', {}, name),
      s.title ? h('div', { class: 'hint' }, s.url) : null,
      h('p', { class: 'subscription-status', role: 'status' }, status(s)),
      h('div', { class: 'hint' }, `${s.imported_total} imported · `,
        h('a', { href: `#/playlist/${s.playlist_id}` }, 'Playlist'))),
    h('div', { class: 'row' },
      h('button', {
        type: 'button',
        class: 'ghost',
        'aria-label': `${paused ? 'Resume' : 'Pause'} ${name}`,
        onclick: () => change(s, paused ? 'resume' : 'pause'),
      }, paused ? 'Resume' : 'Pause'),
      h('button', {
        type: 'button',
        class: 'ghost',
        'aria-label': `Unsubscribe from ${name}`,
        onclick: () => unsubscribe(s, name),
      }, 'Unsubscribe')));
}

async function change(s, action) {
  try {
    await api(`/subscriptions/${s.id}/${action}`, { method: 'POST' });
    await load();
  } catch (error) {
    say($('#subscriptions-message'), explain(error), 'error');
  }
}

async function unsubscribe(s, name) {
  if (!window.confirm(`Unsubscribe from “${name}”? What was imported stays.`)) return;
  try {
    await api(`/subscriptions/${s.id}`, { method: 'DELETE' });
    await load();
    say($('#subscriptions-message'), `Unsubscribed from “${name}”. What it imported stays.`, 'ok');
  } catch (error) {
    say($('#subscriptions-message'), explain(error), 'error');
  }
}

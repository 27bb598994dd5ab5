// Admin pages: users, songs, jobs and the audit timeline of any aggregate. Each section
// renders what its route answers, and a readable message when the route is missing.

import { api } from './api.js';
import { $, $$, h, say, formatDate, formatTime } from './ui.js';

let section = 'users';

export function setup() {
  $$('[data-admin]').forEach((tab) => tab.addEventListener('click', () => open(tab.dataset.admin)));
  $('#admin-job-status').addEventListener('change', loadJobs);
  $('#audit-form').addEventListener('submit', (event) => {
    event.preventDefault();
    loadAudit();
  });
}

export function show() { open(section); }

function open(name) {
  section = name;
  for (const tab of $$('[data-admin]')) tab.setAttribute('aria-selected', String(tab.dataset.admin === name));
  for (const panel of ['users', 'songs', 'jobs', 'audit']) $(`#admin-${panel}`).hidden = panel !== name;
  say($('#admin-message'), '');
  if (name === 'users') loadUsers();
  if (name === 'songs') loadSongs();
  if (name === 'jobs') loadJobs();
}

/** Opens the audit view for one aggregate. */
export function audit(type, id) {
  open('audit');
  $('#audit-type').value = type;
  $('#audit-id').value = id;
  loadAudit();
}

function unavailable(error, what) {
  if (error.status === 404 || error.status === 405) {
    return `The ${what} view is not available on this server yet.`;
  }
  return error.message;
}

const listOf = (body, ...keys) => {
  for (const key of keys) if (Array.isArray(body?.[key])) return body[key];
  return Array.isArray(body) ? body : [];
};

function table(caption, columns, rows) {
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.label)))),
      h('tbody', {}, rows.map((row) => h('tr', {}, columns.map((c) => h('td', { 'data-label': c.label }, c.cell(row))))))));
}

function historyButton(type, id, label) {
  return h('button', { type: 'button', class: 'ghost small', onclick: () => audit(type, id), 'aria-label': `History of ${label}` }, 'History');
}

async function loadUsers() {
  const panel = $('#admin-users');
  panel.replaceChildren(h('p', { class: 'message' }, 'Loading users…'));
  try {
    const users = listOf(await api('/admin/users'), 'users', 'items');
    panel.replaceChildren(table('Users', [
      { label: 'Email', cell: (u) => u.email },
      { label: 'Roles', cell: (u) => (u.roles ?? []).join(', ') || 'user' },
      { label: 'Verified', cell: (u) => (u.verified ? 'yes' : 'no') },
      { label: 'Status', cell: (u) => h('span', { class: u.disabled ? 'tag danger' : 'tag' }, u.disabled ? 'disabled' : 'active') },
      { label: 'Sign-ins', cell: (u) => String(u.sign_in_count ?? '') },
      {
        label: 'Actions',
        cell: (u) => h('span', { class: 'actions' },
          h('button', {
            type: 'button', class: u.disabled ? 'ghost small' : 'ghost small danger',
            'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.email}`,
            onclick: () => setDisabled(u, !u.disabled),
          }, u.disabled ? 'Enable' : 'Disable'),
          historyButton('user', u.id ?? u.user_id, u.email)),
      },
    ], users));
  } catch (error) {
    panel.replaceChildren(h('p', { class: 'message', 'data-kind': 'error' }, unavailable(error, 'users')));
  }
}

async function setDisabled(user, disabled) {
  const id = user.id ?? user.user_id;
  try {
    await api(`/admin/users/${id}/${disabled ? 'disable' : 'enable'}`, { method: 'POST' });
    say($('#admin-message'), `${user.email} is ${disabled ? 'disabled' : 'enabled'}.`, 'ok');
    loadUsers();
  } catch (error) {
    say($('#admin-message'), error.message, 'error');
  }
}

async function loadSongs() {
  const panel = $('#admin-songs');
  panel.replaceChildren(h('p', { class: 'message' }, 'Loading songs…'));
  try {
    const songs = listOf(await api('/admin/songs'), 'songs', 'tracks', 'items');
    if (!songs.length) {
      panel.replaceChildren(h('p', { class: 'message' }, 'No songs stored yet.'));
      return;
    }
    panel.replaceChildren(table('Songs', [
      { label: 'Song', cell: (s) => s.title || s.track_id || s.id },
      { label: 'Artist', cell: (s) => s.artist ?? '' },
      { label: 'Id', cell: (s) => h('code', {}, s.track_id ?? s.song_id ?? s.id) },
      {
        label: 'Duration',
        cell: (s) => (s.duration_ms != null ? formatTime(s.duration_ms / 1000) : (s.duration_s != null ? formatTime(s.duration_s) : '')),
      },
      { label: 'Users', cell: (s) => String(s.library_count ?? s.user_count ?? s.owners ?? '') },
      { label: 'Stored', cell: (s) => formatDate(s.stored_at ?? s.created_at) },
      { label: 'Actions', cell: (s) => historyButton('track', s.track_id ?? s.song_id ?? s.id, s.title || s.track_id) },
    ], songs));
  } catch (error) {
    panel.replaceChildren(h('p', { class: 'message', 'data-kind': 'error' }, unavailable(error, 'songs')));
  }
}

async function loadJobs() {
  const panel = $('#admin-jobs-table');
  const status = $('#admin-job-status').value;
  panel.replaceChildren(h('p', { class: 'message' }, 'Loading jobs…'));
  try {
    const jobs = listOf(await api(`/admin/jobs${status ? `?status=${encodeURIComponent(status)}` : ''}`), 'jobs', 'items');
    if (!jobs.length) {
      panel.replaceChildren(h('p', { class: 'message' }, status ? `No ${status} jobs.` : 'No jobs yet.'));
      return;
    }
    panel.replaceChildren(table('Jobs', [
      { label: 'Job', cell: (j) => h('code', {}, String(j.job_id ?? j.id).slice(0, 8)) },
      { label: 'Source', cell: (j) => (typeof j.source === 'object' ? j.source?.value : j.source) ?? '' },
      { label: 'User', cell: (j) => j.email ?? j.user_email ?? j.user_id ?? j.requested_by ?? '' },
      { label: 'Status', cell: (j) => h('span', { class: j.status === 'failed' ? 'tag danger' : 'tag' }, j.status) },
      { label: 'Reason', cell: (j) => j.error?.message ?? j.error_message ?? '' },
      { label: 'Updated', cell: (j) => formatDate(j.updated_at ?? j.created_at) },
      { label: 'Actions', cell: (j) => historyButton('import', j.job_id ?? j.id, `job ${j.job_id ?? j.id}`) },
    ], jobs));
  } catch (error) {
    panel.replaceChildren(h('p', { class: 'message', 'data-kind': 'error' }, unavailable(error, 'jobs')));
  }
}

async function loadAudit() {
  const panel = $('#audit-result');
  const type = $('#audit-type').value;
  const id = $('#audit-id').value.trim();
  const asOf = $('#audit-asof').value;
  if (!id) return;
  const params = new URLSearchParams();
  if (asOf) params.set('as_of', new Date(asOf).toISOString());
  panel.replaceChildren(h('p', { class: 'message' }, 'Loading the history…'));
  try {
    const body = await api(`/admin/audit/${encodeURIComponent(type)}/${encodeURIComponent(id)}${params.size ? `?${params}` : ''}`);
    const events = listOf(body, 'events', 'timeline', 'items');
    const state = body?.state ?? body?.state_as_of ?? body?.aggregate ?? null;
    panel.replaceChildren(
      h('h3', {}, `${type} ${id}`),
      asOf ? h('p', { class: 'message' }, `State as of ${formatDate(new Date(asOf))}`) : null,
      state ? h('details', { open: true }, h('summary', {}, 'State'), h('pre', {}, JSON.stringify(state, null, 2))) : null,
      events.length
        ? h('ol', { class: 'timeline', 'aria-label': 'Event timeline' }, events.map((e) => h('li', {},
          h('div', { class: 'event-head' },
            h('span', { class: 'event-seq' }, `#${e.sequence ?? e.seq ?? ''}`),
            h('strong', { class: 'event-type' }, e.event_type ?? e.type ?? 'event'),
            h('time', { datetime: e.recorded_at ?? e.at ?? '' }, formatDate(e.recorded_at ?? e.at ?? e.timestamp))),
          h('details', {}, h('summary', {}, 'Details'), h('pre', {}, JSON.stringify(e.payload ?? e.data ?? e, null, 2))))))
        : h('p', { class: 'message' }, 'No events for this aggregate (at that moment).'));
  } catch (error) {
    panel.replaceChildren(h('p', { class: 'message', 'data-kind': 'error' }, unavailable(error, 'audit')));
  }
}

// Admin pages: users, songs, jobs and the audit timeline of any aggregate, read from
// GET /api/admin/users ({users}), /admin/songs ({songs}), /admin/jobs ({jobs}) and
// /admin/audit/{type}/{id}[?as_of] ({state, events}). Failures show the API's message.

import { api } from './api.js';
import { explain } from './messages.js';
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

/** The list under `key` in an admin answer; anything else is an error, not an empty list. */
function listOf(body, key) {
  if (!Array.isArray(body?.[key])) {
    throw new Error(`The server gave an answer without "${key}".`);
  }
  return body[key];
}

function failed(panel, what, error) {
  panel.replaceChildren(h('p', { class: 'message', 'data-kind': 'error' }, `Could not load the ${what}. ${explain(error)}`));
}

/** A table; `key(row)` gives each row's data attributes (its id, for tests and tools). */
function table(caption, columns, rows, key = () => ({})) {
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.label)))),
      h('tbody', {}, rows.map((row) => tableRow(columns, row, key)))));
}

function tableRow(columns, row, key) {
  return h('tr', { dataset: key(row) },
    columns.map((c) => h('td', { 'data-label': c.label, class: c.wrap ? 'wrap' : null }, c.cell(row))));
}

/** A long id, shortened for a table cell; the whole id is in the tooltip. */
function shortId(id) {
  return h('code', { title: id }, id.length > 14 ? `${id.slice(0, 12)}…` : id);
}

function formatSize(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} kB`;
}

function historyButton(type, id, label) {
  return h('button', { type: 'button', class: 'ghost small', onclick: () => audit(type, id), 'aria-label': `History of ${label}` }, 'History');
}

const userColumns = [
  { label: 'Email', cell: (u) => u.email, wrap: true },
  { label: 'Roles', cell: (u) => u.roles.join(', ') || 'user' },
  { label: 'Verified', cell: (u) => (u.verified ? 'yes' : 'no') },
  { label: 'Status', cell: (u) => h('span', { class: u.disabled ? 'tag danger' : 'tag' }, u.disabled ? 'disabled' : 'active') },
  { label: 'Sign-ins', cell: (u) => String(u.sign_in_count) },
  { label: 'Last sign-in', cell: (u) => formatDate(u.last_sign_in_at) || 'never' },
  { label: 'Joined', cell: (u) => formatDate(u.created_at) },
  {
    label: 'Actions',
    cell: (u) => h('span', { class: 'actions' },
      h('button', {
        type: 'button', class: u.disabled ? 'ghost small' : 'ghost small danger',
        'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.email}`,
        onclick: () => setDisabled(u, !u.disabled),
      }, u.disabled ? 'Enable' : 'Disable'),
      h('button', {
        type: 'button', class: 'ghost small',
        'aria-label': `${isAdmin(u) ? 'Remove admin role from' : 'Make admin'} ${u.email}`,
        onclick: () => setAdmin(u, !isAdmin(u)),
      }, isAdmin(u) ? 'Remove admin' : 'Make admin'),
      historyButton('user', u.id, u.email)),
  },
];
const userKey = (u) => ({ userId: u.id });

async function loadUsers() {
  const panel = $('#admin-users');
  panel.replaceChildren(h('p', { class: 'message' }, 'Loading users…'));
  try {
    const users = listOf(await api('/admin/users'), 'users');
    panel.replaceChildren(table('Users', userColumns, users, userKey));
  } catch (error) {
    failed(panel, 'users', error);
  }
}

/** Redraws one user's row from what the action changed; the rest stays as it is. */
function updateRow(user) {
  const row = $(`#admin-users tr[data-user-id="${user.id}"]`);
  if (row) row.replaceWith(tableRow(userColumns, user, userKey));
}

function isAdmin(user) {
  return user.roles.includes('admin');
}

async function setAdmin(user, admin) {
  if (!admin && !window.confirm(`Remove the admin role from ${user.email}? They lose access to these pages at once.`)) return;
  try {
    await api(`/admin/users/${user.id}/admin`, { method: admin ? 'POST' : 'DELETE' });
    const roles = admin ? [...new Set([...user.roles, 'admin'])] : user.roles.filter((r) => r !== 'admin');
    updateRow({ ...user, roles });
    say($('#admin-message'), `${user.email} ${admin ? 'is now an admin' : 'is no longer an admin'}.`, 'ok');
  } catch (error) {
    say($('#admin-message'), `Could not change ${user.email}. ${explain(error)}`, 'error');
  }
}

async function setDisabled(user, disabled) {
  if (disabled && !window.confirm(`Disable ${user.email}? They are signed out everywhere and cannot sign in until enabled again.`)) return;
  try {
    await api(`/admin/users/${user.id}/${disabled ? 'disable' : 'enable'}`, { method: 'POST' });
    updateRow({ ...user, disabled });
    say($('#admin-message'), `${user.email} is ${disabled ? 'disabled' : 'enabled'}.`, 'ok');
  } catch (error) {
    say($('#admin-message'), `Could not change ${user.email}. ${explain(error)}`, 'error');
  }
}

async function loadSongs() {
  const panel = $('#admin-songs');
  panel.replaceChildren(h('p', { class: 'message' }, 'Loading songs…'));
  try {
    const songs = listOf(await api('/admin/songs'), 'songs');
    if (!songs.length) {
      panel.replaceChildren(h('p', { class: 'message' }, 'No songs stored yet.'));
      return;
    }
    panel.replaceChildren(table('Songs', [
      { label: 'Song', cell: (s) => s.title || s.track_id, wrap: true },
      { label: 'Artist', cell: (s) => s.artist ?? '', wrap: true },
      { label: 'Id', cell: (s) => shortId(s.track_id) },
      { label: 'Source', cell: (s) => s.source, wrap: true },
      { label: 'Duration', cell: (s) => formatTime(s.duration_ms / 1000) },
      { label: 'Format', cell: (s) => `${s.codec} · ${Math.round(s.bitrate / 1000)} kbps · ${formatSize(s.size)}` },
      { label: 'Libraries', cell: (s) => String(s.libraries) },
      { label: 'Stored', cell: (s) => formatDate(s.stored_at) },
      { label: 'Actions', cell: (s) => historyButton('track', s.track_id, s.title || s.track_id) },
    ], songs, (s) => ({ trackId: s.track_id })));
  } catch (error) {
    failed(panel, 'songs', error);
  }
}

async function loadJobs() {
  const panel = $('#admin-jobs-table');
  const status = $('#admin-job-status').value;
  panel.replaceChildren(h('p', { class: 'message' }, 'Loading jobs…'));
  try {
    const jobs = listOf(await api(`/admin/jobs${status ? `?status=${encodeURIComponent(status)}` : ''}`), 'jobs');
    if (!jobs.length) {
      panel.replaceChildren(h('p', { class: 'message' }, status ? `No ${status} jobs.` : 'No jobs yet.'));
      return;
    }
    panel.replaceChildren(table('Jobs', [
      // Job ids are UUIDv7: they start with the time, so the end tells them apart.
      { label: 'Job', cell: (j) => h('code', { title: j.job_id }, `…${j.job_id.slice(-8)}`) },
      { label: 'Source', cell: (j) => `${j.source.kind}: ${j.source.value}`, wrap: true },
      { label: 'User', cell: (j) => j.requester.email ?? j.requester.id, wrap: true },
      {
        label: 'Status',
        cell: (j) => h('span', { class: j.status === 'failed' ? 'tag danger' : 'tag' },
          j.status === 'running' ? `running (${j.stage})` : j.status),
      },
      { label: 'Song', cell: (j) => (j.track_id ? shortId(j.track_id) : '') },
      { label: 'Reason', cell: (j) => (j.error ? `${j.error.code}: ${j.error.message ?? ''}` : ''), wrap: true },
      { label: 'Took', cell: (j) => (j.duration_ms != null ? formatTime(j.duration_ms / 1000) : '') },
      { label: 'Updated', cell: (j) => formatDate(j.updated_at) },
      { label: 'Actions', cell: (j) => historyButton('import', j.job_id, `job ${j.job_id}`) },
    ], jobs, (j) => ({ jobId: j.job_id })));
  } catch (error) {
    failed(panel, 'jobs', error);
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
    const events = listOf(body, 'events');
    panel.replaceChildren(
      h('h3', {}, `${body.aggregate_type} ${body.aggregate_id}`),
      h('p', { class: 'message' },
        `${body.as_of ? `State as of ${formatDate(body.as_of)}` : 'Current state'} · version ${body.version}`),
      h('div', { class: 'audit' },
        h('section', { 'aria-label': 'State' }, h('h3', {}, 'State'), stateTable(body.state)),
        h('section', { 'aria-label': 'Events' }, h('h3', {}, 'Events'), events.length
          ? h('ol', { class: 'timeline', 'aria-label': 'Event timeline' }, events.map((e) => h('li', { dataset: { type: e.type } },
            h('div', { class: 'event-head' },
              h('span', { class: 'event-seq' }, `#${e.sequence}`),
              h('strong', { class: 'event-type' }, e.type),
              h('time', { datetime: e.recorded_at }, formatDate(e.recorded_at))),
            h('details', {}, h('summary', {}, 'Details'), h('pre', {}, JSON.stringify({
              payload: e.payload,
              issued_by: e.issued_by,
              command: e.command,
              command_id: e.command_id,
              correlation_id: e.correlation_id,
              causation_id: e.causation_id,
            }, null, 2))))))
          : h('p', { class: 'message' }, 'No events for this aggregate at that moment.'))));
  } catch (error) {
    failed(panel, 'history', error);
  }
}

/** A field name as words: `last_sign_in_at` -> "Last sign in at". */
function words(key) {
  const text = String(key).replace(/_/g, ' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** One value of the folded state, readable: dates, lists, nested fields. */
function value(v) {
  if (v === null || v === undefined) return h('span', { class: 'hint' }, '—');
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  if (typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(v)) return h('time', { datetime: v }, formatDate(v));
  if (Array.isArray(v)) return v.length ? h('ul', {}, v.map((item) => h('li', {}, value(item)))) : h('span', { class: 'hint' }, 'none');
  if (typeof v === 'object') return stateTable(v);
  return String(v);
}

/** The aggregate's state as a two-column table (nested objects as nested tables). */
function stateTable(state) {
  if (state === null || typeof state !== 'object' || Array.isArray(state)) {
    return h('p', {}, value(state));
  }
  const entries = Object.entries(state);
  if (!entries.length) return h('p', { class: 'message' }, 'Nothing yet.');
  return h('table', { class: 'state-table' },
    h('tbody', {}, entries.map(([k, v]) => h('tr', {},
      h('th', { scope: 'row' }, words(k)),
      h('td', { 'data-label': words(k) }, value(v))))));
}

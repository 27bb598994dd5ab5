// Imports: starting them (search result, link, uploaded files) and the Jobs view, which
// follows each running job live (GET /api/jobs/{id}/events) until it ends.

import { api, events, notePosition } from './api.js';
import { jobReason, explain } from './messages.js';
import { $, h, say, toast } from './ui.js';

const jobs = new Map(); // job_id -> {job, node, controller}
let user = null;
let hooks = { completed: () => {}, play: () => {}, audit: () => {}, isAdmin: () => false };

const finished = (status) => status === 'completed' || status === 'failed';
const stageNames = {
  requested: 'Queued', waiting: 'Waiting for another download', downloading: 'Downloading',
  transcoding: 'Transcoding', storing: 'Storing', completed: 'Done', failed: 'Failed',
};

// "Clear finished" hides jobs on this device: a list of job ids per user, kept small.
const hiddenKey = () => `jukebox.jobs.hidden.${user?.id ?? ''}`;
function hiddenJobs() {
  try { return new Set(JSON.parse(localStorage.getItem(hiddenKey()) ?? '[]')); } catch { return new Set(); }
}
function hide(ids) {
  const all = [...hiddenJobs(), ...ids].slice(-500);
  localStorage.setItem(hiddenKey(), JSON.stringify(all));
}

export function setup(options) {
  hooks = { ...hooks, ...options };
  $('#jobs-clear').addEventListener('click', clearFinished);
  setInterval(tickRetries, 1000);
}

/** The signed-in user (for the per-user list of cleared jobs), or null. */
export function setUser(next) {
  user = next;
  if (!next) stopAll();
}

function jobLabel(job) {
  if (job.title) return job.artist ? `${job.title} — ${job.artist}` : job.title;
  return job.label || job.source?.value || job.job_id;
}

function stageText(job) {
  if (job.retry && !finished(job.status)) {
    const left = Math.round((Date.parse(job.retry.next_at) - Date.now()) / 1000);
    const { attempt, max_attempts: max } = job.retry;
    return left > 0 ? `Retrying (attempt ${attempt} of ${max}, next in ${left} s)`
      : `Retrying (attempt ${attempt} of ${max})…`;
  }
  const name = stageNames[job.status] ?? job.status;
  return finished(job.status) ? name : `${name} · ${job.percent ?? 0}%`;
}

function renderJob(entry) {
  const { job } = entry;
  const percent = job.status === 'completed' ? 100 : job.percent ?? 0;
  const node = entry.node ?? h('li', { class: 'job' });
  const label = jobLabel(job);
  node.dataset.status = job.status;
  node.dataset.jobId = job.job_id;
  const retryable = job.status === 'failed' && ['video', 'url'].includes(job.source?.kind);
  const canPlay = job.status === 'completed' && job.track_id && job.in_library !== false;
  const children = [
    h('div', { class: 'meta' },
      h('div', { class: 'title' }, label),
      h('div', { class: 'artist job-stage' }, stageText(job)),
      job.status === 'failed' ? h('div', { class: 'job-error' }, jobReason(job.error)) : null,
      job.status === 'failed' && job.source?.kind === 'upload'
        ? h('div', { class: 'artist' }, 'To try again, upload the file again.') : null,
      job.status === 'failed' && hooks.isAdmin() && job.error?.message
        ? h('details', { class: 'job-detail' }, h('summary', {}, 'Details (admin)'),
          h('p', {}, `${job.error.code}: ${job.error.message}`),
          h('button', { type: 'button', class: 'ghost small', onclick: () => hooks.audit('import', job.job_id) }, 'History'))
        : null),
    finished(job.status) ? null : h('progress', {
      max: '100', value: String(percent), 'aria-label': `Progress of ${label}`,
    }),
    canPlay ? h('button', {
      type: 'button', class: 'ghost small', onclick: () => hooks.play(job.track_id, label), 'aria-label': `Play ${label}`,
    }, 'Play') : null,
    retryable ? h('button', {
      type: 'button', class: 'primary small', onclick: () => retry(entry), 'aria-label': `Retry ${label}`,
    }, 'Retry') : null,
  ].filter(Boolean);
  node.replaceChildren(...children);
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
  $('#jobs-clear').hidden = ![...jobs.values()].some((e) => finished(e.job.status));
  const message = $('#jobs-message');
  if (jobs.size && message.dataset.kind !== 'error') say(message, '');
}

function tickRetries() {
  for (const entry of jobs.values()) {
    if (entry.job.retry && !finished(entry.job.status) && entry.node) {
      const stage = entry.node.querySelector('.job-stage');
      if (stage) stage.textContent = stageText(entry.job);
    }
  }
}

export function trackJob(job) {
  let entry = jobs.get(job.job_id);
  if (!entry) {
    entry = { job };
    jobs.set(job.job_id, entry);
  } else {
    entry.job = { ...entry.job, ...job, label: entry.job.label ?? job.label };
  }
  renderJob(entry);
  if (!finished(entry.job.status) && !entry.controller) follow(entry);
  return entry;
}

/** Follows one job's live events until it finishes. */
async function follow(entry) {
  entry.controller = new AbortController();
  const id = entry.job.job_id;
  let attempts = 0;
  while (!finished(entry.job.status) && user && !entry.controller.signal.aborted) {
    try {
      await events(`/jobs/${id}/events`, (name, data) => {
        if (name === 'progress' && data && !finished(entry.job.status)) {
          if (data.status === 'retrying') {
            entry.job = {
              ...entry.job,
              retry: {
                attempt: data.attempt,
                max_attempts: data.max_attempts,
                next_at: new Date(Date.now() + (data.next_in_s ?? 0) * 1000).toISOString(),
              },
            };
          } else {
            const status = data.status ?? entry.job.status;
            entry.job = {
              ...entry.job,
              retry: null,
              status: finished(status) ? entry.job.status : status,
              percent: data.percent ?? entry.job.percent,
            };
          }
        } else if (name === 'job' && data) {
          // A completed job's position: the library shows its track from there on.
          notePosition(data.position);
          const before = entry.job.status;
          const retry = data.status === before ? entry.job.retry : null;
          entry.job = { ...entry.job, ...data, retry: data.retry ?? retry, label: entry.job.label };
          if (finished(data.status) && !finished(before)) jobFinished(entry);
        }
        renderJob(entry);
      }, entry.controller.signal);
      attempts = 0;
    } catch (error) {
      if (error.name === 'AbortError') break;
      // The request's position came with the import's answer, so the job is there: a 4xx
      // is final. A dropped stream or a 5xx (503: not caught up yet) is tried again.
      if (attempts > 30 || (error.status && error.status < 500)) {
        say($('#jobs-message'), `Jukebox lost track of an import. ${explain(error)} Reload the page to see it again.`, 'error');
        break;
      }
      attempts += 1;
    }
    if (!finished(entry.job.status)) await new Promise((r) => { setTimeout(r, 500); });
  }
  entry.controller = null;
}

async function jobFinished(entry) {
  const message = $('#import-message');
  // The notice that said "started" now says how it ended, so the two never disagree.
  const shownHere = () => message.dataset.jobId === entry.job.job_id && !$('#view-search').hidden;
  if (entry.job.status === 'completed') {
    entry.job.in_library = true;
    hooks.completed(entry.job);
    await loadJobs({ quiet: true }); // the stored song's title and artist label it now
    const label = jobLabel(entry.job);
    if (message.dataset.jobId === entry.job.job_id) say(message, `Imported: ${label}.`, 'ok');
    if (!shownHere()) toast(`Imported: ${label}`);
  } else {
    const { job } = entry;
    const label = jobLabel(job);
    const reason = `Could not import ${label}: ${jobReason(job.error)}`;
    if (message.dataset.jobId === job.job_id) say(message, reason, 'error');
    if (!shownHere()) toast(reason);
  }
}

function stopAll() {
  for (const entry of jobs.values()) entry.controller?.abort();
  jobs.clear();
  $('#jobs-list').replaceChildren();
  updateBadge();
}

export async function loadJobs({ quiet = false } = {}) {
  try {
    const body = await api('/jobs?limit=50');
    const hidden = hiddenJobs();
    const list = (body.jobs ?? []).filter((j) => !(hidden.has(j.job_id) && finished(j.status)));
    // Oldest first so that prepend() leaves the newest on top.
    for (const job of list.slice().reverse()) trackJob(job);
    if (!quiet) say($('#jobs-message'), jobs.size ? '' : 'No imports yet. Search or paste a link to import music.');
  } catch (error) {
    if (!quiet) say($('#jobs-message'), `Could not load your imports. ${explain(error)}`, 'error');
  }
}

function clearFinished() {
  const done = [...jobs.values()].filter((e) => finished(e.job.status));
  hide(done.map((e) => e.job.job_id));
  for (const entry of done) {
    entry.node?.remove();
    jobs.delete(entry.job.job_id);
  }
  updateBadge();
  say($('#jobs-message'), jobs.size ? `Cleared ${done.length} finished.` : 'No imports to show. Search or paste a link to import music.');
}

/** Starts the same source again as a new job, in place of the failed one. */
async function retry(entry) {
  const { source } = entry.job;
  const body = source.kind === 'video' ? { video_id: source.value.replace(/^yt:/, '') } : { url: source.value };
  try {
    const answer = await api('/songs/import', { method: 'POST', json: body });
    hide([entry.job.job_id]);
    entry.node?.remove();
    jobs.delete(entry.job.job_id);
    trackJob({ job_id: answer.job_id, status: answer.status ?? 'requested', label: entry.job.label, source });
  } catch (error) {
    say($('#jobs-message'), `Could not retry: ${explain(error)}`, 'error');
  }
}

/** Requests an import and follows its job; the search page's notice follows it too. */
export async function startImport(body, label) {
  const answer = await api('/songs/import', { method: 'POST', json: body });
  trackJob({ job_id: answer.job_id, status: answer.status ?? 'requested', label });
  const message = $('#import-message');
  message.dataset.jobId = answer.job_id;
  say(message, `Importing ${label}… Follow it under Jobs.`, 'ok');
  return answer;
}

/** Uploads files one after the other; each becomes a job. */
export async function uploadFiles(files) {
  const message = $('#import-message');
  const list = [...files];
  let done = 0;
  for (const file of list) {
    say(message, `Uploading ${file.name}${list.length > 1 ? ` (${done + 1} of ${list.length})` : ''}…`);
    const form = new FormData();
    form.append('file', file, file.name);
    try {
      const answer = await api('/songs/upload', { method: 'POST', body: form });
      trackJob({ job_id: answer.job_id, status: 'requested', label: file.name, source: { kind: 'upload', value: file.name } });
      done += 1;
    } catch (error) {
      delete message.dataset.jobId;
      say(message, `Could not upload ${file.name}: ${explain(error)}`, 'error');
      return;
    }
  }
  delete message.dataset.jobId;
  say(message, list.length > 1
    ? `${done} files received; follow their imports under Jobs.`
    : 'Upload received; follow the import under Jobs.', 'ok');
}

/** A track left the library: its jobs no longer offer Play. */
export function trackRemoved(trackId) {
  for (const entry of jobs.values()) {
    if (entry.job.track_id === trackId) {
      entry.job.in_library = false;
      renderJob(entry);
    }
  }
}

/** The label a job gave a track (for the player before the library lists it). */
export function labelOf(trackId) {
  const entry = [...jobs.values()].find((e) => e.job.track_id === trackId);
  return entry ? jobLabel(entry.job) : null;
}

// The account part of "Apps & devices": the devices signed in (from /api/me/sessions;
// end one, or every other one), the password, the email address and the download of
// my data (/api/me/export, a zip), and deleting the account (DELETE /api/me). App credentials
// are listed above it by apps.js.

import { api, renewSession, signOut } from './api.js';
import * as auth from './auth.js';
import { explain } from './messages.js';
import { $, h, say, formatDate } from './ui.js';

export function setup() {
  $('#devices-others').addEventListener('click', signOutOthers);
  $('#password-form').addEventListener('submit', changePassword);
  $('#email-form').addEventListener('submit', changeEmail);
  $('#export-download').addEventListener('click', downloadExport);
  $('#erase-form').addEventListener('submit', eraseAccount);
}

export function show(user) {
  if (user) $('#email-current').textContent = user.email;
  loadDevices();
}

function deviceRow(session) {
  const used = session.last_used_at ? `last used ${formatDate(session.last_used_at)}` : '';
  return h('li', { class: 'credential-row', dataset: { session: session.id } },
    h('div', {},
      h('strong', {}, session.device || 'Unknown client'),
      session.current ? h('span', { class: 'badge current' }, 'this device') : null,
      h('div', { class: 'hint' },
        [`Signed in ${formatDate(session.started_at)}`, used, session.client ? `from ${session.client}` : '']
          .filter(Boolean).join(' · '))),
    session.current ? null : h('button', {
      type: 'button',
      class: 'ghost',
      onclick: () => endSession(session),
    }, 'Sign out'));
}

async function loadDevices() {
  const list = $('#devices-list');
  try {
    const answer = await api('/me/sessions');
    const sessions = answer?.sessions;
    if (!Array.isArray(sessions)) throw new Error('unexpected answer');
    list.replaceChildren(...sessions.map(deviceRow));
    $('#devices-others').hidden = !sessions.some((s) => !s.current);
  } catch (error) {
    say($('#devices-message'), explain(error), 'error');
  }
}

async function endSession(session) {
  try {
    await api(`/me/sessions/${session.id}`, { method: 'DELETE' });
    say($('#devices-message'), `${session.device || 'That device'} is signed out.`, 'ok');
    await loadDevices();
  } catch (error) {
    say($('#devices-message'), explain(error), 'error');
  }
}

async function signOutOthers() {
  if (!window.confirm('Sign out every other device? This one stays signed in.')) return;
  try {
    await renewSession('/me/sessions/sign-out-others');
    say($('#devices-message'), 'Every other device is signed out.', 'ok');
    await loadDevices();
  } catch (error) {
    say($('#devices-message'), explain(error), 'error');
  }
}

async function changePassword(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  say($('#password-message'), 'Changing your password…');
  try {
    await renewSession('/me/password', {
      current_password: form.get('current'),
      new_password: form.get('new'),
    });
    event.target.reset();
    say($('#password-message'), 'Password changed. Every other device is signed out.', 'ok');
    await loadDevices();
  } catch (error) {
    say($('#password-message'), explain(error), 'error');
  }
}

async function changeEmail(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const password = form.get('password');
  try {
    const answer = await api('/me/email', {
      method: 'POST',
      json: password ? { email: form.get('email'), password } : { email: form.get('email') },
    });
    event.target.reset();
    say($('#email-message'), `We sent a link to ${answer.pending_email}. Your address changes when you open it.`, 'ok');
  } catch (error) {
    say($('#email-message'), explain(error), 'error');
  }
}

async function downloadExport() {
  const button = $('#export-download');
  button.disabled = true;
  say($('#export-message'), 'Preparing your data…');
  try {
    // A fetch (the API needs the access token), then a download of what it brought.
    const archive = await api('/me/export', { blob: true });
    const link = h('a', {
      href: URL.createObjectURL(archive),
      download: `jukebox-export-${new Date().toISOString().slice(0, 10)}.zip`,
    });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
    say($('#export-message'), 'Your data is downloaded.', 'ok');
  } catch (error) {
    say($('#export-message'), explain(error), 'error');
  } finally {
    button.disabled = false;
  }
}

async function eraseAccount(event) {
  event.preventDefault();
  const form = event.target;
  const password = new FormData(form).get('password');
  if (!window.confirm('Delete your account for good? Your library, playlists and history go with it.')) return;
  say($('#erase-message'), 'Deleting your account…');
  try {
    await api('/me', { method: 'DELETE', json: password ? { password } : {} });
    form.reset();
    say($('#erase-message'), '');
    // The server ended every session; this ends the one here (a 401 is expected).
    await signOut().catch(() => {});
    auth.show('Your account is deleted. The address can sign up again as someone new.', 'ok');
  } catch (error) {
    say($('#erase-message'), explain(error), 'error');
  }
}

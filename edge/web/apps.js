// Apps & devices: credentials for music apps that speak the Subsonic API (DSub,
// Symfonium, Feishin...), from /api/me/app-credentials. A new credential's secret is
// shown once, with the server address to type into the app; the list never has secrets.

import { api } from './api.js';
import { explain, settings } from './messages.js';
import { $, h, say, formatDate } from './ui.js';

/** The address an app is given: the one people reach this page at. */
const serverAddress = () => settings.public_base_url || window.location.origin;

export function setup() {
  $('#apps-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const name = $('#apps-name').value.trim();
    say($('#apps-message'), '');
    try {
      const created = await api('/me/app-credentials', { method: 'POST', json: { name } });
      $('#apps-name').value = '';
      showSecret(created);
      await load();
    } catch (error) {
      say($('#apps-message'), explain(error), 'error');
    }
  });
}

export function show() {
  $('#apps-new').hidden = true;
  $('#apps-new').replaceChildren();
  load();
}

function copyButton(label, text) {
  return h('button', {
    type: 'button',
    class: 'ghost',
    onclick: async (event) => {
      const button = event.currentTarget;
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = 'Copied';
      } catch {
        button.textContent = 'Select it and copy';
      }
    },
  }, label);
}

function showSecret(created) {
  const box = $('#apps-new');
  box.replaceChildren(
    h('h3', {}, `“${created.name}” is ready`),
    h('p', {}, 'Type these into the app. The password is shown this once: copy it now.'),
    h('dl', { class: 'credential' },
      h('dt', {}, 'Server'), h('dd', {}, h('code', {}, serverAddress()), ' ', copyButton('Copy', serverAddress())),
      h('dt', {}, 'Username'), h('dd', {}, h('code', {}, created.username), ' ', copyButton('Copy', created.username)),
      h('dt', {}, 'Password (or API key)'),
      h('dd', {}, h('code', { id: 'apps-secret' }, created.secret), ' ', copyButton('Copy', created.secret))),
  );
  box.hidden = false;
}

async function load() {
  const list = $('#apps-list');
  try {
    const answer = await api('/me/app-credentials');
    const credentials = answer?.credentials;
    if (!Array.isArray(credentials)) throw new Error('unexpected answer');
    list.replaceChildren(...credentials.map((c) => h('li', { class: 'credential-row' },
      h('div', {},
        h('strong', {}, c.name),
        h('div', { class: 'hint' }, `Created ${formatDate(c.created_at)} · `,
          c.last_used_at ? `last used ${formatDate(c.last_used_at)}${c.last_client ? ` by ${c.last_client}` : ''}`
            : 'never used')),
      h('button', {
        type: 'button',
        class: 'ghost',
        onclick: () => revoke(c),
      }, 'Revoke'))));
    say($('#apps-message'), credentials.length ? '' : 'No app has a credential yet.');
  } catch (error) {
    say($('#apps-message'), explain(error), 'error');
  }
}

async function revoke(credential) {
  if (!window.confirm(`Revoke “${credential.name}”? Apps using it stop working at once.`)) return;
  try {
    await api(`/me/app-credentials/${credential.id}`, { method: 'DELETE' });
    say($('#apps-message'), `“${credential.name}” is revoked.`, 'ok');
    $('#apps-new').hidden = true;
    await load();
  } catch (error) {
    say($('#apps-message'), explain(error), 'error');
  }
}

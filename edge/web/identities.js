// "Sign-in methods" on Apps & devices (ADR 46): the providers linked to my account
// (GET /api/me/identities), Unlink each, and "Link <name>" for each provider this server
// has (/settings.json). Linking goes to the provider and back: the server's callback
// returns here with #/apps?linked=<id> or #/apps?link_error=<code>&provider=<id>.

import { api } from './api.js';
import { explain, settings } from './messages.js';
import { $, h, say, formatDate } from './ui.js';

const nameOf = (id) => settings.sign_in_providers.find((p) => p.id === id)?.name ?? 'The provider';

// The callback's codes, worded here: the URL carries no text of its own to show.
function refusal(code, name) {
  switch (code) {
    case 'email_unverified':
      return `${name} has not verified the address of that account. Verify it with ${name}, then link it again.`;
    case 'identity_linked':
      return `That ${name} account is already linked to another Jukebox account. Unlink it there first, or link a different ${name} account.`;
    case 'provider_linked':
      return `Your account already has a ${name} sign-in. Unlink it first to link another.`;
    case 'invalid_oauth_state':
      return 'The link attempt expired or was started in another browser. Try again.';
    case 'session_revoked':
    case 'invalid_token':
    case 'account_disabled':
      return 'You were signed out before the link finished. Sign in and try again.';
    case 'unavailable':
      return `${name} could not be reached. Try again later.`;
    default:
      return `${name} could not be linked. Try again.`;
  }
}

// Back from the provider with a result not scrolled to yet.
let returned = false;

/** The result the callback put in the address, shown once. */
function showResult() {
  const [, query] = window.location.hash.split('?');
  if (!query) return;
  const params = new URLSearchParams(query);
  const linked = params.get('linked');
  const failed = params.get('link_error');
  if (linked) say($('#identities-message'), `${nameOf(linked)} is linked: you can sign in with it now.`, 'ok');
  else if (failed) say($('#identities-message'), refusal(failed, nameOf(params.get('provider'))), 'error');
  window.history.replaceState(null, '', '#/apps');
  returned = true;
}

export async function show() {
  showResult();
  const list = $('#identities-list');
  let answer;
  try {
    answer = await api('/me/identities');
    if (!Array.isArray(answer?.identities)) throw new Error('unexpected answer');
  } catch (error) {
    say($('#identities-message'), explain(error), 'error');
    return;
  }
  list.replaceChildren(...answer.identities.map((identity) => h('li', {
    class: 'credential-row', dataset: { provider: identity.provider ?? '' },
  },
  h('div', {},
    h('strong', {}, identity.name),
    h('div', { class: 'hint' }, `${identity.email} · linked ${formatDate(identity.linked_at)}`)),
  identity.provider ? h('button', {
    type: 'button', class: 'ghost', onclick: () => unlink(identity),
  }, 'Unlink') : null)));
  const linked = new Set(answer.identities.map((i) => i.provider));
  const buttons = settings.sign_in_providers.filter((p) => !linked.has(p.id))
    .map((p) => h('button', { type: 'button', class: 'ghost', onclick: () => link(p) }, `Link ${p.name}`));
  $('#identities-link').replaceChildren(...buttons);
  $('#identities-none').hidden = answer.identities.length > 0;
  // Back from the provider: the result is further down the page (centred, clear of the
  // sticky header).
  if (returned) $('#identities-message').scrollIntoView({ block: 'center' });
  returned = false;
}

async function link(provider) {
  say($('#identities-message'), `Going to ${provider.name}…`);
  try {
    const started = await api(`/me/identities/${encodeURIComponent(provider.id)}`, { method: 'POST' });
    window.location.assign(started.authorization_url);
  } catch (error) {
    say($('#identities-message'), explain(error), 'error');
  }
}

async function unlink(identity) {
  if (!window.confirm(`Unlink ${identity.name}? You will no longer sign in with it.`)) return;
  try {
    await api(`/me/identities/${encodeURIComponent(identity.provider)}`, { method: 'DELETE' });
    await show();
    say($('#identities-message'), `${identity.name} is unlinked.`, 'ok');
  } catch (error) {
    say($('#identities-message'), explain(error), 'error');
  }
}

// The signed-out screens: sign in, create an account, confirm the address from the
// mailed link (/?verify=...), and send that link again.

import * as API from './api.js';
import { explain, settings } from './messages.js';
import { $, h, say } from './ui.js';

function showTab(which) {
  const signup = which === 'signup';
  $('#tab-signin').setAttribute('aria-selected', String(!signup));
  $('#tab-signup').setAttribute('aria-selected', String(signup));
  $('#signin-form').hidden = signup;
  $('#signup-form').hidden = !signup;
}

/** A status line under the forms; `extra` nodes follow the text. */
export function message(text, kind = '', ...extra) {
  const node = $('#auth-message');
  say(node, text, kind);
  for (const item of extra) if (item) node.append(' ', item);
}

/** Shows the "send the link again" form, with the address filled in when known. */
function offerResend(email = '') {
  $('#resend-form').hidden = false;
  if (email) $('#resend-email').value = email;
}

function verifyLink(token) {
  return h('a', { href: `/?verify=${encodeURIComponent(token)}`, id: 'verify-link' }, 'Confirm my address');
}

async function resend(event) {
  event.preventDefault();
  const email = $('#resend-email').value.trim();
  const button = $('#resend-submit');
  button.disabled = true;
  try {
    const body = await API.resendVerification(email);
    message(`If ${email} has an account that is not confirmed yet, a new link is on its way. Open it, then sign in.`, 'ok',
      body?.verification_token ? verifyLink(body.verification_token) : null);
  } catch (error) {
    message(explain(error), 'error');
  } finally {
    // The server limits how often a link is sent; the button waits a little too.
    setTimeout(() => { button.disabled = false; }, 30000);
  }
}

export function setup() {
  $('#tab-signin').addEventListener('click', () => showTab('signin'));
  $('#tab-signup').addEventListener('click', () => showTab('signup'));
  $('#google-signin').hidden = !settings.google_sign_in;
  $('#google-button').addEventListener('click', () => API.expectSession());
  $('#resend-form').addEventListener('submit', resend);
  $('#signin-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    message('Signing in…');
    try {
      await API.signIn(form.get('email'), form.get('password'));
      message('');
      event.target.reset();
    } catch (error) {
      message(explain(error), 'error');
      if (error.code === 'email_not_verified') offerResend(form.get('email'));
    }
  });
  $('#signup-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const email = form.get('email');
    message('Creating your account…');
    try {
      const body = await API.signUp(email, form.get('password'));
      if (!settings.email_verification_required) {
        // Nothing to confirm first: straight in.
        await API.signIn(email, form.get('password'));
        message('');
        event.target.reset();
        return;
      }
      $('#signin-email').value = email;
      event.target.reset();
      showTab('signin');
      offerResend(email);
      message(`Account created. We sent a link to ${email}: open it to confirm your address, then sign in.`, 'ok',
        // Development servers (EXPOSE_VERIFICATION_TOKEN) hand the link over directly.
        body?.verification_token ? verifyLink(body.verification_token) : null);
    } catch (error) {
      message(explain(error), 'error');
    }
  });
}

/** Confirms the address when the page was opened from the mailed link. */
export async function verifyFromLink() {
  const token = new URLSearchParams(window.location.search).get('verify');
  if (!token) return;
  window.history.replaceState(null, '', '/');
  message('Confirming your email address…');
  try {
    await API.verifyEmail(token);
    showTab('signin');
    $('#resend-form').hidden = true;
    message('Address confirmed. Sign in to start.', 'ok');
    $('#signin-email').focus();
  } catch (error) {
    message(error.code === 'invalid_token' || error.code === 'token_expired'
      ? 'This link was already used, has expired, or is not valid. If your address is not confirmed yet, send a new link below; if it is, just sign in.'
      : explain(error), 'error');
    offerResend();
  }
}

/** The signed-out screen, with what ended the session when there is something to say. */
export function show(text = '', kind = '') {
  $('#app-screen').hidden = true;
  $('#auth-screen').hidden = false;
  if (text) message(text, kind);
  $('#signin-email').focus();
}

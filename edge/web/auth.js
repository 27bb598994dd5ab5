// The signed-out screens: sign in, create an account, confirm the address from the
// mailed link (/?verify=...), and send that link again; "forgot password" and the reset
// link (/?reset=...), and the link that confirms a new address (/?confirm-email=...).

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

async function forgot(event) {
  event.preventDefault();
  const email = $('#forgot-email').value.trim();
  const button = $('#forgot-submit');
  button.disabled = true;
  try {
    await API.forgotPassword(email);
    message(`If ${email} has an account, a link to choose a new password is on its way. It works for an hour.`, 'ok');
  } catch (error) {
    message(explain(error), 'error');
  } finally {
    setTimeout(() => { button.disabled = false; }, 30000);
  }
}

let resetToken = null;

async function reset(event) {
  event.preventDefault();
  try {
    await API.resetPassword(resetToken, $('#reset-password').value);
    resetToken = null;
    event.target.reset();
    event.target.hidden = true;
    showTab('signin');
    message('Your new password is set, and every device was signed out. Sign in with it.', 'ok');
  } catch (error) {
    message(error.code === 'invalid_token' || error.code === 'token_expired'
      ? 'This link was already used, has expired, or is not valid. Ask for a new one with “Forgot password?”.'
      : explain(error), 'error');
  }
}

export function setup() {
  $('#forgot-open').addEventListener('click', () => {
    $('#forgot-form').hidden = false;
    $('#forgot-email').value = $('#signin-email').value;
    $('#forgot-email').focus();
  });
  $('#forgot-form').addEventListener('submit', forgot);
  $('#reset-form').addEventListener('submit', reset);
  $('#tab-signin').addEventListener('click', () => showTab('signin'));
  $('#tab-signup').addEventListener('click', () => showTab('signup'));
  // One "Sign in with <name>" per OpenID Connect provider (Google, Keycloak, ...).
  const providers = settings.sign_in_providers || [];
  $('#provider-signin').hidden = providers.length === 0;
  for (const provider of providers) {
    const link = document.createElement('a');
    link.className = 'button provider';
    link.href = provider.login;
    link.textContent = `Sign in with ${provider.name}`;
    link.addEventListener('click', () => API.expectSession());
    $('#provider-buttons').append(link);
  }
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

/**
 * Follows a mailed link the page was opened from. Resolves to true when the page should
 * stay on the signed-out screen (a reset link: its form waits there).
 */
export async function verifyFromLink() {
  const query = new URLSearchParams(window.location.search);
  if (query.get('reset')) {
    resetToken = query.get('reset');
    window.history.replaceState(null, '', '/');
    showTab('signin');
    $('#reset-form').hidden = false;
    message('Choose a new password for your account.');
    return true;
  }
  if (query.get('confirm-email')) {
    window.history.replaceState(null, '', '/');
    try {
      const answer = await API.confirmEmail(query.get('confirm-email'));
      message(`Your account's address is now ${answer.email}. Sign in with it.`, 'ok');
      $('#signin-email').value = answer.email;
    } catch (error) {
      message(error.code === 'invalid_token' || error.code === 'token_expired'
        ? 'This link was already used, has expired, or is not valid. Change the address again to get a new one.'
        : explain(error), 'error');
    }
    return true;
  }
  const token = query.get('verify');
  if (!token) return false;
  window.history.replaceState(null, '', '/');
  message('Confirming your email address…');
  try {
    await API.verifyEmail(token);
    showTab('signin');
    $('#resend-form').hidden = true;
    message('Address confirmed. Sign in to start.', 'ok');
    $('#signin-email').focus();
    return false;
  } catch (error) {
    message(error.code === 'invalid_token' || error.code === 'token_expired'
      ? 'This link was already used, has expired, or is not valid. If your address is not confirmed yet, send a new link below; if it is, just sign in.'
      : explain(error), 'error');
    offerResend();
  }
  return false;
}

/** The signed-out screen, with what ended the session when there is something to say. */
export function show(text = '', kind = '') {
  $('#app-screen').hidden = true;
  $('#auth-screen').hidden = false;
  if (text) message(text, kind);
  $('#signin-email').focus();
}

const form = document.getElementById('signup');
const message = document.getElementById('message');
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const body = Object.fromEntries(new FormData(form));
  message.textContent = 'Creating your account…';
  const response = await fetch('/api/auth/signup', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  message.textContent = response.ok
    ? `Welcome, ${data.email}! Check your mail to confirm your address.`
    : (data.error?.message ?? `Sign-up failed (${response.status}).`);
});

// A verification link from the mail: /?verify=<token>.
const verifyToken = new URLSearchParams(window.location.search).get('verify');
if (verifyToken) {
  message.textContent = 'Confirming your email address…';
  fetch('/api/auth/verify-email', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token: verifyToken }),
  }).then(async (response) => {
    const data = await response.json().catch(() => ({}));
    message.textContent = response.ok
      ? 'Your email address is confirmed. You can sign in.'
      : (data.error?.message ?? `Verification failed (${response.status}).`);
    window.history.replaceState(null, '', '/');
  });
}

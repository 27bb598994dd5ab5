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
    ? `Welcome, ${data.email}! Your account is ready.`
    : (data.error?.message ?? `Sign-up failed (${response.status}).`);
});

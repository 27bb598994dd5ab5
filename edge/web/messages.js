// What the app says when something goes wrong: a sentence a person can act on (what
// happened, what to do). Server codes that need more than the server's own message are
// worded here; the technical detail stays in the job (admins see it) and in the logs.

/** The page's settings from /settings.json (loaded once at start). */
export const settings = {
  sign_in_providers: [], email_verification_required: false, public_base_url: '', imports: true,
};

export async function loadSettings() {
  try {
    const response = await fetch('/settings.json', { credentials: 'same-origin' });
    if (response.ok) Object.assign(settings, await response.json());
  } catch { /* the defaults above */ }
}

/** A message as a sentence: capital first letter, a full stop at the end. */
export function sentence(text) {
  const trimmed = String(text ?? '').trim();
  if (!trimmed) return '';
  const capital = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?…)]$/.test(capital) ? capital : `${capital}.`;
}

const here = () => window.location.origin;

/** The sentence for an API error (`ApiError`: status, code, message). */
export function explain(error) {
  switch (error?.code) {
    case 'foreign_origin':
    case 'missing_origin':
    case 'cross_site': {
      const there = settings.public_base_url && settings.public_base_url !== here()
        ? ` Open ${settings.public_base_url} instead,` : '';
      return `This server does not accept sessions from ${here()}, so it cannot keep you signed in here.${there} or ask the operator to add this address to ALLOWED_ORIGINS.`;
    }
    case 'search_unavailable':
    case 'search_failed':
      return 'YouTube search is not available right now: this server has no YouTube API key, '
        + 'or it cannot reach YouTube. You can still import from a link or upload a file below.';
    case 'network':
      return 'Jukebox cannot be reached. Check your connection and try again.';
    case 'email_not_verified':
      return 'Your email address is not confirmed yet. Open the link we sent you, or send it again.';
    default:
      return sentence(error?.message || 'Something went wrong. Try again.');
  }
}

// A failed import's code (the downloader's `JobError` codes) -> what a person reads.
const jobReasons = {
  unsupported_url: 'No audio was found at this link. Check the link, or download the file and upload it.',
  private_address: 'This link points to a private network address, which Jukebox does not import from.',
  unavailable: 'That video or file is not available (removed, private or blocked). Try another link.',
  too_long: 'This recording is longer than this server accepts.',
  too_big: 'This file is larger than this server accepts.',
  corrupt_media: 'The file could not be read as audio. Try another copy of it.',
  network: 'Jukebox could not reach the site, even after several tries. Check the link, or try again later.',
  timeout: 'The site answered too slowly, even after several tries. Try again later.',
  tool_failed: 'The download failed. Try again later, or download the file and upload it.',
  storage: 'The song could not be stored. Try again later.',
  internal: 'The import could not be finished. Try again later.',
  not_audio: 'That file is not audio Jukebox can read.',
};

/** The sentence for a failed job's `{code, message}`. */
export function jobReason(error) {
  if (!error) return 'The import failed. Try again.';
  return jobReasons[error.code] ?? 'The import failed. Try again, or import from another link.';
}

// Plays (issue 19): the player calls `trackPlayProgress` on every timeupdate; a play is
// recorded (POST /api/me/plays) once the track was listened to for half its length or
// 4 minutes, whichever is first. Seeks do not count as listening. The play's time is when
// it started, so a retried request is the same play on the server (counted once).

import { api } from './api.js';

const ENOUGH_S = 240;
// A jump larger than this between two timeupdates is a seek, not listening.
const SEEK_S = 2;

let play = null;

function start(id, at) {
  play = { id, startedAt: new Date(), listened: 0, last: at, sent: false };
}

/** Where the player is in `track` (seconds); records the play once it counts. */
export function trackPlayProgress(track, currentTime, duration) {
  const id = track?.track_id;
  if (!id || !Number.isFinite(currentTime)) return;
  // A new track, or the same one from the start again (repeat, or played again).
  if (!play || play.id !== id || (play.sent && currentTime < 1 && play.last > currentTime)) {
    start(id, currentTime);
    return;
  }
  const step = currentTime - play.last;
  play.last = currentTime;
  if (step > 0 && step < SEEK_S) play.listened += step;
  const length = Number.isFinite(duration) && duration > 0 ? duration : 2 * ENOUGH_S;
  if (!play.sent && play.listened >= Math.min(length / 2, ENOUGH_S)) {
    play.sent = true;
    const body = { track_id: id, played_at: play.startedAt.toISOString() };
    api('/me/plays', { method: 'POST', json: body }).catch(() => {
      // Not counted this time (offline, or the track left the library): nothing to show.
    });
  }
}

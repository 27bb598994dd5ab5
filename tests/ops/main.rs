//! Operations (issue 8): the compose files are read and checked for consistency, and the
//! TLS edge proxy's config (infra/edge) is checked by `nginx -t` and then run, as Debian's
//! real nginx on loopback, in front of the running system.

mod compose;
mod edge;
mod restore;

use jukebox_test_support as support;

//! `library::page`: one page of a user's library, in one of four sorts, optionally
//! filtered by text and resumed after a row (keyset pagination on (sort value, track id):
//! a row inserted or removed elsewhere never shifts the rows after it, so paging neither
//! skips nor repeats one).
//!
//! Each combination of sort, direction, filter and resume point is its own statement, with
//! no `$n IS NULL OR …` arms: Postgres caches a generic plan for a prepared statement,
//! and in a generic plan an optional condition cannot be an index condition. The resume
//! point would then be a filter on every row before it, one page costing the whole
//! library (ADR 20). Here the resume point is always part of the index range and the
//! order is the index's, so a page reads about `limit` index entries at any library size.
//!
//! The limit is written into the statement, not bound: with `LIMIT $n` the generic plan
//! is costed for an unknown limit (a tenth of the user's rows), never looks as cheap as a
//! custom one, and Postgres planned every execution anew (ADR 47).

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;
use sqlx::{FromRow, Postgres};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::access::{live_sql, verdict, Verdict};

/// A sort of a user's library: the column it reads (with its index, migration 0005).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Added,
    Title,
    Artist,
    Duration,
}

/// The largest `added` sort value: 9999-12-31T23:59:59.999999Z in microseconds.
const MAX_ADDED_MICROS: i64 = 253_402_300_799_999_999;
/// Longer sort values than any stored one are forged.
const MAX_SORT_TEXT: usize = 4096;

impl Sort {
    fn column(self) -> &'static str {
        match self {
            Self::Added => "added_at",
            Self::Title => "title_key",
            Self::Artist => "artist_key",
            Self::Duration => "duration_ms",
        }
    }

    /// The row's sort value as text (what [`Entry::sort_value`] carries; `added`'s is
    /// written by [`Page::read`]), and a resume value (`${n}`, text) as this column's
    /// type. `added` travels as microseconds since the epoch: Postgres' text form of a
    /// timestamptz depends on the session's settings.
    fn value_sql(self, n: usize) -> (&'static str, String) {
        match self {
            Self::Added => (
                "''",
                format!("('epoch'::timestamptz + ${n}::text::bigint * interval '1 microsecond')"),
            ),
            Self::Title => ("title_key", format!("${n}::text")),
            Self::Artist => ("artist_key", format!("${n}::text")),
            Self::Duration => ("duration_ms::text", format!("${n}::text::bigint")),
        }
    }

    /// Whether `value` is a sort value of this sort that a page could have answered, so
    /// that resuming after it cannot fail on a cast: an integer in range for `added` and
    /// `duration`, text without NUL for the others.
    pub fn accepts(self, value: &str) -> bool {
        match self {
            Self::Added => value
                .parse::<i64>()
                .is_ok_and(|micros| (0..=MAX_ADDED_MICROS).contains(&micros)),
            Self::Duration => value.parse::<i64>().is_ok(),
            Self::Title | Self::Artist => value.len() <= MAX_SORT_TEXT && !value.contains('\0'),
        }
    }
}

/// The row a page starts after: its [`Entry::sort_value`] (checked with
/// [`Sort::accepts`]) and track id.
#[derive(Debug, Clone, Copy)]
pub struct Resume<'a> {
    pub value: &'a str,
    pub track_id: &'a str,
}

/// What to list.
#[derive(Debug, Clone, Copy)]
pub struct PageQuery<'a> {
    pub user_id: Uuid,
    pub sort: Sort,
    pub descending: bool,
    /// Text the lower-cased title or artist contains, taken literally.
    pub text: Option<&'a str>,
    pub after: Option<Resume<'a>>,
    /// At least 1.
    pub limit: i64,
}

/// One track of the page.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Entry {
    pub track_id: String,
    pub title: Option<String>,
    pub artist: Option<String>,
    pub duration_ms: i64,
    pub has_cover: bool,
    /// A cover image is stored (its URL can be signed).
    pub cover_stored: bool,
    pub added_at: Option<OffsetDateTime>,
    /// This row's value in the page's sort, to resume after it ([`Resume::value`]).
    pub sort_value: String,
    /// When the user starred the track, if they did (kept on the entry: `marks.rs`).
    pub starred_at: Option<OffsetDateTime>,
    /// How often and when last they played it, if they did (likewise).
    pub play_count: Option<i64>,
    pub last_played: Option<OffsetDateTime>,
}

/// Up to `limit` entries, and whether more follow the last one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub entries: Vec<Entry>,
    pub more: bool,
}

/// One page of `query.user_id`'s library.
pub async fn page(pool: &sqlx::PgPool, query: &PageQuery<'_>) -> Result<Page, sqlx::Error> {
    let sql = page_sql(query, false);
    let rows = bind(sqlx::query(&sql), query).fetch_all(pool).await?;
    Page::read(&rows, query)
}

/// [`page`] for the holder of an access token, with the access check folded into the
/// page's statement: one round trip per request instead of two. Only an empty answer
/// asks the access state again, to tell a denial from an empty page.
pub async fn page_for_session(
    pool: &sqlx::PgPool,
    query: &PageQuery<'_>,
    session_id: Uuid,
) -> Result<Result<Page, Verdict>, sqlx::Error> {
    let sql = page_sql(query, true);
    let rows = bind(sqlx::query(&sql), query)
        .bind(session_id)
        .fetch_all(pool)
        .await?;
    if rows.is_empty() {
        match verdict(pool, query.user_id, session_id).await? {
            Verdict::Live => {}
            denied => return Ok(Err(denied)),
        }
    }
    Page::read(&rows, query).map(Ok)
}

impl Page {
    /// A page from the `limit + 1` rows read: the extra one only says more follow.
    fn read(rows: &[PgRow], query: &PageQuery<'_>) -> Result<Self, sqlx::Error> {
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            let mut entry = Entry::from_row(row)?;
            if query.sort == Sort::Added {
                // Written here, not by the statement: computing it there for every row
                // cost a fifth of the page (numeric arithmetic), and only the last is used.
                entry.sort_value = entry.added_at.map(added_micros).unwrap_or_default();
            }
            entries.push(entry);
        }
        let more = entries.len() as i64 > query.limit;
        entries.truncate(usize::try_from(query.limit).unwrap_or(0));
        Ok(Self { entries, more })
    }
}

/// An `added` sort value: microseconds since the epoch, as the resume point reads it.
fn added_micros(at: OffsetDateTime) -> String {
    ((at - OffsetDateTime::UNIX_EPOCH).whole_microseconds() as i64).to_string()
}

/// Binds `page_sql`'s parameters in order: user, pattern (with `text`), resume value and
/// track id (with `after`).
fn bind<'q>(
    statement: Query<'q, Postgres, PgArguments>,
    query: &PageQuery<'q>,
) -> Query<'q, Postgres, PgArguments> {
    let mut statement = statement.bind(query.user_id);
    if let Some(text) = query.text {
        statement = statement.bind(like_pattern(text));
    }
    if let Some(after) = query.after {
        statement = statement.bind(after.value).bind(after.track_id);
    }
    statement
}

fn direction(descending: bool) -> (&'static str, &'static str) {
    if descending {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    }
}

/// The statement for this combination, gated on the session's access check (its
/// session the last parameter) when `session`. Parameters in order: user, pattern (with
/// `text`), resume value and track id (with `after`), session; `limit + 1` is part of
/// the text.
fn page_sql(query: &PageQuery<'_>, session: bool) -> String {
    let column = query.sort.column();
    let (sort_value, _) = query.sort.value_sql(0);
    let (dir, op) = direction(query.descending);
    let mut n = 1;
    let mut conditions = String::from("user_id = $1");
    if query.text.is_some() {
        n += 1;
        conditions.push_str(&format!(
            " AND (title_key LIKE ${n} OR artist_key LIKE ${n})"
        ));
    }
    if query.after.is_some() {
        let (_, value) = query.sort.value_sql(n + 1);
        conditions.push_str(&format!(
            " AND ({column}, track_id) {op} ({value}, ${}::text)",
            n + 2
        ));
        n += 2;
    }
    if session {
        conditions.push_str(&format!(" AND {}", live_sql("$1", &format!("${}", n + 1))));
    }
    let sql = format!(
        "SELECT track_id, title, artist, duration_ms, has_cover, cover_stored, added_at,
                {sort_value} AS sort_value, starred_at, play_count, last_played
         FROM library
         WHERE {conditions}
         ORDER BY {column} {dir}, track_id {dir}
         LIMIT {}",
        query.limit + 1
    );
    sql
}

/// `%text%` for LIKE, with the pattern characters taken literally.
pub fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(text: Option<&'static str>, after: Option<Resume<'static>>) -> PageQuery<'static> {
        PageQuery {
            user_id: Uuid::nil(),
            sort: Sort::Added,
            descending: true,
            text,
            after,
            limit: 50,
        }
    }

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(like_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
    }

    #[test]
    fn each_combination_numbers_only_the_parameters_it_binds() {
        let compact = |sql: String| sql.split_whitespace().collect::<Vec<_>>().join(" ");
        let resume = Resume {
            value: "1",
            track_id: "yt:x",
        };
        assert!(compact(page_sql(&query(None, None), false))
            .ends_with("WHERE user_id = $1 ORDER BY added_at DESC, track_id DESC LIMIT 51"));
        assert!(compact(page_sql(&query(Some("a"), None), false)).ends_with(
            "WHERE user_id = $1 AND (title_key LIKE $2 OR artist_key LIKE $2) \
             ORDER BY added_at DESC, track_id DESC LIMIT 51"
        ));
        assert!(
            compact(page_sql(&query(Some("a"), Some(resume)), false)).ends_with(
                "AND (title_key LIKE $2 OR artist_key LIKE $2) AND (added_at, track_id) < \
             (('epoch'::timestamptz + $3::text::bigint * interval '1 microsecond'), $4::text) \
             ORDER BY added_at DESC, track_id DESC LIMIT 51"
            )
        );
        // The session's parameter follows the resume point's.
        assert!(page_sql(&query(Some("a"), Some(resume)), true).contains("s.session_id = $5"));
        let ascending = PageQuery {
            sort: Sort::Duration,
            descending: false,
            ..query(None, Some(resume))
        };
        assert!(compact(page_sql(&ascending, false)).ends_with(
            "WHERE user_id = $1 AND (duration_ms, track_id) > ($2::text::bigint, $3::text) \
             ORDER BY duration_ms ASC, track_id ASC LIMIT 51"
        ));
    }

    #[test]
    fn resume_values_are_checked_against_their_sort() {
        for (sort, value) in [
            (Sort::Duration, "abc"),
            (Sort::Duration, "99999999999999999999"),
            (Sort::Added, "2026-01-01 00:00:00+00"),
            (Sort::Added, "-1"),
            (Sort::Added, "253402300800000000"),
            (Sort::Title, "a\0b"),
        ] {
            assert!(!sort.accepts(value), "{sort:?} {value}");
        }
        assert!(Sort::Duration.accepts("-5"));
        assert!(Sort::Added.accepts("1764000000000000"));
        assert!(Sort::Artist.accepts(""));
    }
}

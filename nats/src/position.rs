//! A place in the log, in relay order: `(transaction_id, global_position)`.

use crate::envelope::EventRecord;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub transaction_id: u64,
    pub global_position: i64,
}

impl Position {
    pub fn of(event: &EventRecord) -> Self {
        let (transaction_id, global_position) = event.position();
        Self {
            transaction_id,
            global_position,
        }
    }
}

/// The read-your-writes token a command's answer carries and a read passes back
/// (`?after=` or `Jukebox-Position`): `<transaction_id>.<global_position>`. Clients treat
/// it as opaque.
impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.transaction_id, self.global_position)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a position looks like <transaction>.<sequence>, as a command's answer gave it")]
pub struct MalformedPosition;

impl std::str::FromStr for Position {
    type Err = MalformedPosition;

    fn from_str(token: &str) -> Result<Self, Self::Err> {
        let (xid, global_position) = token.split_once('.').ok_or(MalformedPosition)?;
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(xid) || !digits(global_position) {
            return Err(MalformedPosition);
        }
        Ok(Self {
            transaction_id: xid.parse().map_err(|_| MalformedPosition)?,
            global_position: global_position.parse().map_err(|_| MalformedPosition)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_round_trips_and_orders_like_the_relay() {
        let p: Position = "1042.77".parse().unwrap();
        assert_eq!(
            p,
            Position {
                transaction_id: 1042,
                global_position: 77
            }
        );
        assert_eq!(p.to_string(), "1042.77");
        // Transaction first: a later commit with a smaller global position is after.
        assert!("1043.5".parse::<Position>().unwrap() > p);
        for bad in [
            "",
            ".",
            "1.",
            ".1",
            "1",
            "a.b",
            "1.2.3",
            "-1.2",
            "1.-2",
            "+1.2",
            " 1.2",
            "99999999999999999999999.1",
            "1.99999999999999999999",
        ] {
            assert_eq!(bad.parse::<Position>(), Err(MalformedPosition), "{bad:?}");
        }
    }
}

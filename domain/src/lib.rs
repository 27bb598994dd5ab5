//! Jukebox's pure domain: aggregates, commands, events, errors and value types.
//!
//! Architecture invariant: this crate does no I/O. Anything from the outside world
//! (clock, hashing, ids) arrives in a command or through an aggregate's `Services`.

pub mod app_credentials;
pub mod audit;
pub mod collection;
pub mod command;
pub mod email_claim;
pub mod external_identity;
pub mod favourite;
pub mod import;
pub mod library;
pub mod library_entry;
pub mod m3u8;
pub mod media;
pub mod metadata;
pub mod music;
pub mod plan;
pub mod play;
pub mod play_queue;
pub mod playlist;
pub mod published;
pub mod session;
pub mod subscription;
pub mod track;
pub mod user;
pub mod value;
pub mod verification;

pub use app_credentials::{
    AppCredential, AppCredentialCommand, AppCredentialError, AppCredentialEvent, AppCredentials,
};
pub use collection::{
    CollectionEntry, CollectionImport, CollectionImportCommand, CollectionImportError,
    CollectionImportEvent, SkipReason, SkippedEntry,
};
pub use command::{Command, CommandError, ErrorCode};
pub use email_claim::{EmailClaim, EmailClaimCommand, EmailClaimError, EmailClaimEvent};
pub use external_identity::{
    ExternalIdentity, ExternalIdentityCommand, ExternalIdentityError, ExternalIdentityEvent,
};
pub use favourite::{
    Favourite, FavouriteCommand, FavouriteError, FavouriteEvent, FavouriteItem, FavouriteKind,
};
pub use import::{Import, ImportCommand, ImportError, ImportEvent};
pub use library::{Library, LibraryCommand, LibraryError, LibraryEvent};
pub use library_entry::LibraryEntry;
pub use media::{youtube_video_id, ImportStage, SourceError, SourceRef, TrackId};
pub use music::{Correction, CorrectionError, TrackDetails};
pub use play::{Play, PlayCommand, PlayError, PlayEvent};
pub use play_queue::{PlayQueueCommand, PlayQueueError, PlayQueueEvent, PlayQueueSave, SavedQueue};
pub use playlist::{Playlist, PlaylistCommand, PlaylistError, PlaylistEvent};
pub use session::{Session, SessionCommand, SessionError, SessionEvent};
pub use subscription::{Subscription, SubscriptionCommand, SubscriptionError, SubscriptionEvent};
pub use track::{StoredCover, StoredTrack, Track, TrackCommand, TrackError, TrackEvent};
pub use user::{User, UserCommand, UserError, UserEvent};
pub use value::{Email, PasswordHash, RevokeReason, Role, SignInMethod, TokenHash, ValueError};
pub use verification::{issue_command_id, TokenPurpose, VerificationToken};

/// Event version written with every event; bump with an upcaster when a shape changes.
pub const EVENT_VERSION: &str = "1.0";

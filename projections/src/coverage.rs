//! Each read model's `AGGREGATES` against what its fold reads: one sample of every event
//! of every aggregate type goes through every model's `keys`. A model whose `keys` takes
//! an event must list its aggregate type (else the fold never sees it and a read waiting
//! on the model would not wait for it), and every type a model lists must be one whose
//! events it takes (else reads wait on it for nothing). It is long because it holds one
//! sample of every event of every aggregate type, which only grows.

use cqrs_es::Aggregate;
use jukebox_domain::{
    AppCredentialEvent, EmailClaimEvent, ExternalIdentityEvent, FavouriteEvent, FavouriteItem,
    FavouriteKind, ImportEvent, ImportStage, LibraryEvent, PasswordHash, PlayEvent, PlayQueueEvent,
    PlaylistEvent, RevokeReason, Role, SessionEvent, SignInMethod, SourceRef, StoredCover,
    StoredTrack, TokenHash, TrackEvent, TrackId, UserEvent,
};
use jukebox_nats::EventRecord;
use uuid::Uuid;

use crate::given::Log;
use crate::runtime::Projection;
use crate::{
    Accounts, AdminUsers, AuthSessions, Favourites, Jobs, Music, PlayQueues, PlaylistEntries,
    Playlists, Plays, Subscriptions, Tracks, UserLibrary,
};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";

/// Does not compile when an event is added: give the new one a sample in `samples`.
fn every_event_has_a_sample(
    user: &UserEvent,
    session: &SessionEvent,
    import: &ImportEvent,
    library: &LibraryEvent,
    track: &TrackEvent,
    claim: &EmailClaimEvent,
    identity: &ExternalIdentityEvent,
) {
    match user {
        UserEvent::UserSignedUp { .. }
        | UserEvent::UserSignedIn
        | UserEvent::UserSignedUpWithIdentity { .. }
        | UserEvent::VerificationIssued { .. }
        | UserEvent::VerificationRequested { .. }
        | UserEvent::EmailVerified
        | UserEvent::SignedIn { .. }
        | UserEvent::PasswordRehashed { .. }
        | UserEvent::RoleGranted { .. }
        | UserEvent::RoleRevoked { .. }
        | UserEvent::UserDisabled
        | UserEvent::UserEnabled
        | UserEvent::PasswordResetRequested { .. }
        | UserEvent::PasswordResetIssued { .. }
        | UserEvent::PasswordReset { .. }
        | UserEvent::PasswordChanged { .. }
        | UserEvent::SessionsEnded
        | UserEvent::EmailChangeRequested { .. }
        | UserEvent::EmailChangeIssued { .. }
        | UserEvent::EmailChanged { .. }
        | UserEvent::UserErased
        | UserEvent::IdentityAdded { .. }
        | UserEvent::IdentityRemoved { .. } => {}
    }
    match session {
        SessionEvent::SessionStarted { .. }
        | SessionEvent::SessionRefreshed { .. }
        | SessionEvent::RefreshTokenReused { .. }
        | SessionEvent::SessionRevoked { .. } => {}
    }
    match import {
        ImportEvent::ImportRequested { .. }
        | ImportEvent::ImportStageChanged { .. }
        | ImportEvent::ImportCompleted { .. }
        | ImportEvent::ImportFailed { .. } => {}
    }
    match library {
        LibraryEvent::TrackAddedToLibrary { .. }
        | LibraryEvent::TrackRemovedFromLibrary { .. }
        | LibraryEvent::TrackDetailsCorrected { .. } => {}
    }
    match track {
        TrackEvent::TrackStored(_) | TrackEvent::TrackDiscarded { .. } => {}
    }
    match claim {
        EmailClaimEvent::EmailClaimed { .. }
        | EmailClaimEvent::SignUpAttempted { .. }
        | EmailClaimEvent::EmailReleased { .. } => {}
    }
    match identity {
        ExternalIdentityEvent::IdentityLinked { .. }
        | ExternalIdentityEvent::IdentityReleased { .. } => {}
    }
}

/// The same for `AppCredentials` (its own function: clippy counts arguments).
fn every_app_credential_event_has_a_sample(event: &AppCredentialEvent) {
    match event {
        AppCredentialEvent::AppCredentialCreated { .. }
        | AppCredentialEvent::AppCredentialRevoked { .. } => {}
    }
}

/// The same for `Favourite` and `Play`.
fn every_favourite_and_play_event_has_a_sample(favourite: &FavouriteEvent, play: &PlayEvent) {
    match favourite {
        FavouriteEvent::ItemStarred { .. } | FavouriteEvent::ItemUnstarred { .. } => {}
    }
    match play {
        PlayEvent::PlayRecorded { .. } => {}
    }
}

/// The same for `Playlist`.
fn every_playlist_event_has_a_sample(event: &PlaylistEvent) {
    match event {
        PlaylistEvent::PlaylistCreated { .. }
        | PlaylistEvent::PlaylistRenamed { .. }
        | PlaylistEvent::PlaylistDescribed { .. }
        | PlaylistEvent::PlaylistVisibilityChanged { .. }
        | PlaylistEvent::PlaylistTracksAdded { .. }
        | PlaylistEvent::PlaylistEntriesRemoved { .. }
        | PlaylistEvent::PlaylistEntriesMoved { .. }
        | PlaylistEvent::PlaylistDeleted { .. } => {}
    }
}

/// The same for `PlayQueueSave`.
fn every_play_queue_event_has_a_sample(event: &PlayQueueEvent) {
    match event {
        PlayQueueEvent::PlayQueueSaved(_) => {}
    }
}

/// The same for `CollectionImport`.
fn every_collection_event_has_a_sample(event: &jukebox_domain::CollectionImportEvent) {
    match event {
        jukebox_domain::CollectionImportEvent::CollectionImported { .. } => {}
    }
}

/// The same for `Subscription`.
fn every_subscription_event_has_a_sample(event: &jukebox_domain::SubscriptionEvent) {
    use jukebox_domain::SubscriptionEvent as E;
    match event {
        E::Subscribed { .. }
        | E::SubscriptionPaused { .. }
        | E::SubscriptionResumed { .. }
        | E::Unsubscribed { .. }
        | E::SubscriptionChecked { .. }
        | E::SubscriptionCheckFailed { .. } => {}
    }
}

/// One of each event, under every aggregate type that writes it.
fn samples() -> Vec<EventRecord> {
    let user = Uuid::from_u128(1);
    let session = Uuid::from_u128(2);
    let job = Uuid::from_u128(3);
    let track_id = TrackId::parse("yt:aaaaaaaaaaa").unwrap();
    let email = jukebox_domain::Email::parse("a@example.com").unwrap();
    let mut log = Log::new();
    for event in [
        UserEvent::UserSignedUp {
            user_id: user,
            email: email.clone(),
            password_hash: PasswordHash::parse(HASH).unwrap(),
        },
        UserEvent::UserSignedIn,
        UserEvent::UserSignedUpWithIdentity {
            user_id: user,
            email: email.clone(),
            issuer: "https://accounts.google.com".into(),
            subject: "1".into(),
        },
        UserEvent::VerificationIssued {
            token_hash: TokenHash::of("v"),
            expires_at: Log::time(60),
        },
        UserEvent::VerificationRequested {
            email: email.clone(),
        },
        UserEvent::EmailVerified,
        UserEvent::SignedIn {
            session_id: session,
            method: SignInMethod::Password,
        },
        UserEvent::PasswordRehashed {
            password_hash: PasswordHash::parse(HASH).unwrap(),
        },
        UserEvent::RoleGranted { role: Role::Admin },
        UserEvent::RoleRevoked { role: Role::Admin },
        UserEvent::UserDisabled,
        UserEvent::UserEnabled,
        UserEvent::PasswordResetRequested {
            email: email.clone(),
        },
        UserEvent::PasswordResetIssued {
            token_hash: TokenHash::of("p"),
            expires_at: Log::time(60),
        },
        UserEvent::PasswordReset {
            password_hash: PasswordHash::parse(HASH).unwrap(),
        },
        UserEvent::PasswordChanged {
            password_hash: PasswordHash::parse(HASH).unwrap(),
        },
        UserEvent::SessionsEnded,
        UserEvent::EmailChangeRequested {
            email: email.clone(),
        },
        UserEvent::EmailChangeIssued {
            email: email.clone(),
            token_hash: TokenHash::of("c"),
            expires_at: Log::time(60),
        },
        UserEvent::EmailChanged {
            from: email.clone(),
            to: email.clone(),
        },
        UserEvent::IdentityAdded {
            provider: "keycloak".into(),
            issuer: "https://id.example".into(),
            subject: "kc-1".into(),
            email: email.clone(),
        },
        UserEvent::IdentityRemoved {
            issuer: "https://id.example".into(),
            subject: "kc-1".into(),
        },
        UserEvent::UserErased,
    ] {
        log = log.event(jukebox_domain::User::TYPE, user, event);
    }
    for event in [
        SessionEvent::SessionStarted {
            user_id: user,
            token_hash: TokenHash::of("s"),
            expires_at: Log::time(60),
            method: SignInMethod::Password,
            epoch: Some(0),
        },
        SessionEvent::SessionRefreshed {
            token_hash: TokenHash::of("r"),
            at: None,
        },
        SessionEvent::RefreshTokenReused {
            token_hash: TokenHash::of("s"),
        },
        SessionEvent::SessionRevoked {
            reason: RevokeReason::RefreshTokenReused,
        },
    ] {
        log = log.event(jukebox_domain::Session::TYPE, session, event);
    }
    for event in [
        ImportEvent::ImportRequested {
            job_id: job,
            requested_by: user,
            source: SourceRef::video("aaaaaaaaaaa").unwrap(),
        },
        ImportEvent::ImportStageChanged {
            stage: ImportStage::Storing,
        },
        ImportEvent::ImportCompleted {
            track_id: track_id.clone(),
        },
        ImportEvent::ImportFailed {
            code: "unavailable".into(),
            reason: "gone".into(),
        },
    ] {
        log = log.event(jukebox_domain::Import::TYPE, job, event);
    }
    log = log.event(
        jukebox_domain::Track::TYPE,
        &track_id,
        TrackEvent::TrackStored(StoredTrack {
            track_id: track_id.clone(),
            object_key: "tracks/yt:aaaaaaaaaaa.m4a".into(),
            size: 1,
            duration_ms: 1,
            codec: "aac".into(),
            bitrate: 1,
            title: None,
            artist: None,
            album: None,
            artists: Vec::new(),
            year: None,
            has_cover: true,
            origin: "upload".into(),
            cover: Some(StoredCover {
                object_key: "tracks/yt:aaaaaaaaaaa.jpg".into(),
                size: 1,
                content_type: "image/jpeg".into(),
            }),
        }),
    );
    for aggregate_type in [
        jukebox_domain::Library::TYPE,
        jukebox_domain::LibraryEntry::TYPE,
    ] {
        for event in [
            LibraryEvent::TrackAddedToLibrary {
                user_id: user,
                track_id: track_id.clone(),
                job_id: job,
            },
            LibraryEvent::TrackDetailsCorrected {
                user_id: user,
                track_id: track_id.clone(),
                correction: jukebox_domain::Correction {
                    title: Some("Title".into()),
                    ..Default::default()
                },
            },
            LibraryEvent::TrackRemovedFromLibrary {
                user_id: user,
                track_id: track_id.clone(),
            },
        ] {
            log = log.event(aggregate_type, user, event);
        }
    }
    log = log.event(
        jukebox_domain::Track::TYPE,
        &track_id,
        TrackEvent::TrackDiscarded {
            object_keys: vec!["tracks/yt:aaaaaaaaaaa.m4a".into()],
        },
    );
    for event in [
        EmailClaimEvent::EmailClaimed { user_id: user },
        EmailClaimEvent::SignUpAttempted {
            user_id: user,
            email: Some(email.as_str().to_owned()),
        },
        EmailClaimEvent::EmailReleased { user_id: user },
    ] {
        log = log.event(jukebox_domain::EmailClaim::TYPE, &email, event);
    }
    for event in [
        ExternalIdentityEvent::IdentityLinked { user_id: user },
        ExternalIdentityEvent::IdentityReleased { user_id: user },
    ] {
        log = log.event(jukebox_domain::ExternalIdentity::TYPE, "google:1", event);
    }
    let credential_id = Uuid::from_u128(4);
    for event in [
        AppCredentialEvent::AppCredentialCreated {
            credential_id,
            name: "phone".into(),
            nonce: "00".into(),
            created_at: Log::time(1),
        },
        AppCredentialEvent::AppCredentialRevoked { credential_id },
    ] {
        log = log.event(jukebox_domain::AppCredentials::TYPE, user, event);
    }
    let item = FavouriteItem::parse(FavouriteKind::Track, track_id.as_str()).unwrap();
    for event in [
        FavouriteEvent::ItemStarred {
            user_id: user,
            item: item.clone(),
            starred_at: Log::time(1),
        },
        FavouriteEvent::ItemUnstarred {
            user_id: user,
            item: item.clone(),
        },
    ] {
        log = log.event(
            jukebox_domain::Favourite::TYPE,
            item.aggregate_id(user),
            event,
        );
    }
    log = log.event(
        jukebox_domain::Play::TYPE,
        jukebox_domain::play::id(user, &track_id, Log::time(1)),
        PlayEvent::PlayRecorded {
            user_id: user,
            track_id: track_id.clone(),
            played_at: Log::time(1),
        },
    );
    let playlist = Uuid::from_u128(5);
    let entry = jukebox_domain::playlist::Entry {
        entry: 1,
        track_id: track_id.clone(),
        rank: 1,
    };
    for event in [
        PlaylistEvent::PlaylistCreated {
            playlist_id: playlist,
            owner: user,
            name: "Mix".into(),
            description: String::new(),
            public: false,
        },
        PlaylistEvent::PlaylistRenamed {
            name: "Mix 2".into(),
        },
        PlaylistEvent::PlaylistDescribed {
            description: "d".into(),
        },
        PlaylistEvent::PlaylistVisibilityChanged { public: true },
        PlaylistEvent::PlaylistTracksAdded {
            entries: vec![entry],
        },
        PlaylistEvent::PlaylistEntriesMoved {
            ranks: vec![jukebox_domain::playlist::Ranked { entry: 1, rank: 2 }],
        },
        PlaylistEvent::PlaylistEntriesRemoved { entries: vec![1] },
        PlaylistEvent::PlaylistDeleted {
            entries: Vec::new(),
        },
    ] {
        log = log.event(jukebox_domain::Playlist::TYPE, playlist, event);
    }
    log = log.event(
        jukebox_domain::PlayQueueSave::TYPE,
        Uuid::from_u128(5),
        PlayQueueEvent::PlayQueueSaved(jukebox_domain::SavedQueue {
            user_id: user,
            track_ids: vec![TrackId::parse("yt:dQw4w9WgXcQ").unwrap()],
            current_track: Some(TrackId::parse("yt:dQw4w9WgXcQ").unwrap()),
            position_ms: 1000,
            client: "web".into(),
            saved_at: Log::time(1),
        }),
    );
    let url = "http://127.0.0.1:9/t1.mp3";
    log = log.event(
        jukebox_domain::CollectionImport::TYPE,
        format!("{user}/0123456789abcdef0123456789abcdef"),
        jukebox_domain::CollectionImportEvent::CollectionImported {
            batch_id: Uuid::from_u128(6),
            user_id: user,
            url: "http://127.0.0.1:9/feed.xml".into(),
            title: "Tones".into(),
            playlist_id: Uuid::from_u128(7),
            added: vec![jukebox_domain::CollectionEntry {
                source: jukebox_domain::SourceRef::url(url).unwrap(),
                track_id: TrackId::of_direct_link(url),
                title: Some("Tone".into()),
            }],
            skipped: vec![jukebox_domain::SkippedEntry {
                position: 2,
                title: None,
                url: None,
                reason: jukebox_domain::SkipReason::Deleted,
            }],
            listed: 2,
            capped: false,
        },
    );
    let subscription = format!("{user}/0123456789abcdef0123456789abcdef");
    for event in [
        jukebox_domain::SubscriptionEvent::Subscribed {
            user_id: user,
            url: "http://127.0.0.1:9/feed.xml".into(),
            latest: Some(1),
            at: Log::time(1),
        },
        jukebox_domain::SubscriptionEvent::SubscriptionChecked {
            check: 1,
            at: Log::time(2),
            title: "Tones".into(),
            found: 1,
            new: 1,
            skipped: 0,
            batch_id: Uuid::from_u128(8),
            imported: vec![jukebox_domain::CollectionEntry {
                source: jukebox_domain::SourceRef::url(url).unwrap(),
                track_id: TrackId::of_direct_link(url),
                title: None,
            }],
            passed_over: Vec::new(),
            next_check_at: Log::time(3),
        },
        jukebox_domain::SubscriptionEvent::SubscriptionCheckFailed {
            check: 2,
            at: Log::time(3),
            rate_limited: true,
            reason: "HTTP Error 429".into(),
            failures: 1,
            retry_at: Log::time(4),
        },
        jukebox_domain::SubscriptionEvent::SubscriptionPaused { at: Log::time(4) },
        jukebox_domain::SubscriptionEvent::SubscriptionResumed { at: Log::time(5) },
        jukebox_domain::SubscriptionEvent::Unsubscribed { at: Log::time(6) },
    ] {
        log = log.event(jukebox_domain::Subscription::TYPE, &subscription, event);
    }
    log.records().to_vec()
}

/// The problems with `P::AGGREGATES`, as messages.
fn mismatches<P: Projection>(samples: &[EventRecord]) -> Vec<String> {
    let mut problems = Vec::new();
    for event in samples {
        let read = !P::keys(event).is_empty();
        if read && !P::consumes(event) {
            problems.push(format!(
                "{}: its fold reads {} events of `{}`, but AGGREGATES {:?} leaves `{}` out, \
                 so the fold never gets them and reads would not wait for them; add it",
                P::NAME,
                event.event_type,
                event.aggregate_type,
                P::AGGREGATES,
                event.aggregate_type
            ));
        }
    }
    for listed in P::AGGREGATES {
        let reads_it = samples
            .iter()
            .any(|e| e.aggregate_type == *listed && !P::keys(e).is_empty());
        if !reads_it {
            problems.push(format!(
                "{}: AGGREGATES lists `{listed}`, but no event of `{listed}` touches a row \
                 (a misspelt or unused type makes reads wait on it for nothing)",
                P::NAME
            ));
        }
    }
    problems
}

#[test]
fn every_aggregate_type_has_samples() {
    let samples = samples();
    for aggregate_type in jukebox_domain::audit::AGGREGATE_TYPES {
        assert!(
            samples.iter().any(|e| e.aggregate_type == *aggregate_type),
            "no sample event of `{aggregate_type}`: add its events to `samples`"
        );
    }
    // Referenced so the exhaustive matches are compiled with the samples.
    let _ = every_event_has_a_sample;
    let _ = every_app_credential_event_has_a_sample;
    let _ = every_favourite_and_play_event_has_a_sample;
    let _ = every_playlist_event_has_a_sample;
    let _ = every_play_queue_event_has_a_sample;
    let _ = every_collection_event_has_a_sample;
    let _ = every_subscription_event_has_a_sample;
}

#[test]
fn each_read_model_lists_exactly_the_aggregates_its_fold_reads() {
    let samples = samples();
    let problems: Vec<String> = [
        mismatches::<Accounts>(&samples),
        mismatches::<AdminUsers>(&samples),
        mismatches::<AuthSessions>(&samples),
        mismatches::<Jobs>(&samples),
        mismatches::<Tracks>(&samples),
        mismatches::<UserLibrary>(&samples),
        mismatches::<Music>(&samples),
        mismatches::<Favourites>(&samples),
        mismatches::<Plays>(&samples),
        mismatches::<Playlists>(&samples),
        mismatches::<PlaylistEntries>(&samples),
        mismatches::<PlayQueues>(&samples),
        mismatches::<Subscriptions>(&samples),
    ]
    .concat();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(
        crate::MODELS.len(),
        crate::ALL.len(),
        "MODELS names every read model"
    );
}

#[test]
fn a_missing_aggregate_type_is_named() {
    struct Forgetful;
    impl Projection for Forgetful {
        const NAME: &'static str = "forgetful";
        const AGGREGATES: &'static [&'static str] = &["user", "tracks"];
        const TABLE: &'static str = "admin_users";
        const KEY_COLUMN: &'static str = "user_id";
        const KEY_TYPE: &'static str = "uuid";
        const COLUMNS: &'static [&'static str] = AdminUsers::COLUMNS;
        type Row = <AdminUsers as Projection>::Row;
        fn key(row: &Self::Row) -> String {
            AdminUsers::key(row)
        }
        fn keys(event: &EventRecord) -> Vec<String> {
            AdminUsers::keys(event)
        }
        fn apply(rows: &mut std::collections::HashMap<String, Self::Row>, event: &EventRecord) {
            AdminUsers::apply(rows, event)
        }
        fn copy_fields(row: &Self::Row) -> Vec<Option<String>> {
            AdminUsers::copy_fields(row)
        }
    }
    let problems = mismatches::<Forgetful>(&samples());
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0].starts_with("forgetful: its fold reads SessionStarted events of `session`"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].starts_with("forgetful: AGGREGATES lists `tracks`"),
        "{}",
        problems[1]
    );
}

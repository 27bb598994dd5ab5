//! The object-store contract: the same cases run against the local folder backend and
//! against `S3Store` talking to a real s3s-fs server (each test starts its own on a
//! loopback port). Needs s3s-fs: `scripts/install-deps.sh` installs it; the S3 tests fail,
//! not skip, without it.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream;
use jukebox_storage::{
    ByteRange, LocalStore, ObjectKey, ObjectStore, S3Config, S3Store, StoreError,
};
use tokio::sync::mpsc;
use tokio_util::io::StreamReader;

use jukebox_test_support::media::files_under;
use jukebox_test_support::S3sFs;

pub struct Fixture {
    pub store: Arc<dyn ObjectStore>,
    /// The local backend's folder (for "no temporary file left" checks).
    pub local_dir: Option<std::path::PathBuf>,
    _guard: Box<dyn std::any::Any + Send>,
}

pub fn local() -> Fixture {
    let dir = tempfile::tempdir().expect("temp folder");
    // A folder that does not exist yet: ensure_bucket creates it.
    let objects = dir.path().join("objects");
    Fixture {
        store: Arc::new(LocalStore::new(&objects)),
        local_dir: Some(objects),
        _guard: Box::new(dir),
    }
}

pub fn s3() -> Fixture {
    let server = S3sFs::start();
    // A fresh server has no bucket: ensure_bucket creates it.
    let store = S3Store::new(&server.store_config("jukebox-test")).expect("S3 config");
    Fixture {
        store: Arc::new(store),
        local_dir: None,
        _guard: Box::new(server),
    }
}

fn key(s: &str) -> ObjectKey {
    ObjectKey::parse(s).unwrap()
}

/// Deterministic, non-repeating-looking bytes.
fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

async fn ready(f: &Fixture) -> &dyn ObjectStore {
    f.store.ensure_bucket().await.expect("ensure_bucket");
    &*f.store
}

async fn put(store: &dyn ObjectStore, k: &ObjectKey, bytes: &[u8]) -> u64 {
    let mut reader = bytes;
    store.put_stream(k, &mut reader).await.expect("put").size
}

async fn get_all(store: &dyn ObjectStore, k: &ObjectKey, range: Option<ByteRange>) -> Vec<u8> {
    store
        .get(k, range)
        .await
        .expect("get")
        .bytes()
        .await
        .unwrap()
}

/// A reader fed by the test: it yields what is sent, fails when an error is sent, and
/// ends when the sender is dropped.
fn fed_reader() -> (
    mpsc::Sender<std::io::Result<Bytes>>,
    impl tokio::io::AsyncRead + Send + Unpin + 'static,
) {
    let (tx, rx) = mpsc::channel(4);
    let chunks = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    (tx, StreamReader::new(Box::pin(chunks)))
}

fn assert_no_temp_files(f: &Fixture) {
    if let Some(dir) = &f.local_dir {
        let hidden: Vec<_> = files_under(dir)
            .into_iter()
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        assert!(hidden.is_empty(), "temporary files left behind: {hidden:?}");
    }
}

async fn ensure_bucket_creates_it_once(f: Fixture) {
    f.store.ensure_bucket().await.expect("first ensure_bucket");
    f.store.ensure_bucket().await.expect("second ensure_bucket");
    let k = key("tracks/first.m4a");
    assert_eq!(put(&*f.store, &k, b"hello").await, 5);
    assert_eq!(get_all(&*f.store, &k, None).await, b"hello");
}

async fn an_object_reads_back_as_written(f: Fixture) {
    let store = ready(&f).await;
    let k = key("tracks/yt:dQw4w9WgXcQ.m4a");
    let bytes = data(100_000, 1);
    assert_eq!(put(store, &k, &bytes).await, 100_000);
    assert_eq!(store.head(&k).await.unwrap().unwrap().size, 100_000);
    assert!(store.exists(&k).await.unwrap());
    let body = store.get(&k, None).await.unwrap();
    assert_eq!(
        (body.start, body.content_length, body.total_size),
        (0, 100_000, 100_000)
    );
    assert_eq!(body.bytes().await.unwrap(), bytes);
    // An empty object is an object.
    let empty = key("tracks/empty.m4a");
    assert_eq!(put(store, &empty, b"").await, 0);
    assert_eq!(store.head(&empty).await.unwrap().unwrap().size, 0);
    assert_eq!(get_all(store, &empty, None).await, b"");
    assert_no_temp_files(&f);
}

async fn ranges_return_the_bytes_asked_for(f: Fixture) {
    let store = ready(&f).await;
    let k = key("tracks/range.m4a");
    let bytes = data(10_000, 2);
    put(store, &k, &bytes).await;
    for (range, first, last) in [
        (ByteRange::new(0, 0), 0, 0),
        (ByteRange::new(0, 1023), 0, 1023),
        (ByteRange::new(5000, 5999), 5000, 5999),
        (ByteRange::from(9000), 9000, 9999),
        (ByteRange::new(9990, 20_000), 9990, 9999),
        (ByteRange::new(0, 9999), 0, 9999),
    ] {
        let body = store.get(&k, Some(range)).await.unwrap();
        assert_eq!(body.start, first, "{range:?}");
        assert_eq!(body.content_length, last - first + 1, "{range:?}");
        assert_eq!(body.total_size, 10_000, "{range:?}");
        assert_eq!(
            body.bytes().await.unwrap(),
            &bytes[first as usize..=last as usize],
            "{range:?}"
        );
    }
    for range in [ByteRange::from(10_000), ByteRange::new(20_000, 30_000)] {
        match store.get(&k, Some(range)).await {
            Err(StoreError::RangeNotSatisfiable { size }) => assert_eq!(size, 10_000),
            other => panic!("{range:?}: {other:?}"),
        }
    }
}

async fn missing_objects_are_absent_not_errors(f: Fixture) {
    let store = ready(&f).await;
    let k = key("tracks/never-stored.m4a");
    assert_eq!(store.head(&k).await.unwrap(), None);
    assert!(!store.exists(&k).await.unwrap());
    match store.get(&k, None).await {
        Err(StoreError::NotFound(missing)) => assert_eq!(missing, k),
        other => panic!("{other:?}"),
    }
    match store.get(&k, Some(ByteRange::new(0, 10))).await {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("{other:?}"),
    }
    store.delete(&k).await.expect("deleting a missing object");
}

async fn a_put_replaces_and_a_delete_removes(f: Fixture) {
    let store = ready(&f).await;
    let k = key("tracks/replace.m4a");
    put(store, &k, b"first version").await;
    put(store, &k, b"second").await;
    assert_eq!(get_all(store, &k, None).await, b"second");
    assert_eq!(store.head(&k).await.unwrap().unwrap().size, 6);
    store.delete(&k).await.unwrap();
    assert_eq!(store.head(&k).await.unwrap(), None);
    assert_no_temp_files(&f);
}

async fn a_file_is_stored_from_its_path(f: Fixture) {
    let store = ready(&f).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("track.m4a");
    let bytes = data(300_000, 3);
    std::fs::write(&path, &bytes).unwrap();
    let k = key("tracks/from-file.m4a");
    assert_eq!(store.put_file(&k, &path).await.unwrap().size, 300_000);
    assert_eq!(get_all(store, &k, None).await, bytes);
    match store
        .put_file(&key("tracks/x.m4a"), &dir.path().join("absent"))
        .await
    {
        Err(e @ StoreError::Io { .. }) => assert!(e.to_string().contains("absent"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.head(&key("tracks/x.m4a")).await.unwrap(), None);
}

async fn an_object_is_invisible_until_its_put_completes(f: Fixture) {
    let store = ready(&f).await;
    let k = key("tracks/slow.m4a");
    let (tx, mut reader) = fed_reader();
    let put = {
        let store = f.store.clone();
        let k = k.clone();
        tokio::spawn(async move { store.put_stream(&k, &mut reader).await })
    };
    tx.send(Ok(Bytes::from(data(50_000, 4)))).await.unwrap();
    // Give the put time to consume and write what it has.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        store.head(&k).await.unwrap(),
        None,
        "a partial object is visible"
    );
    assert!(matches!(
        store.get(&k, None).await,
        Err(StoreError::NotFound(_))
    ));
    tx.send(Ok(Bytes::from(data(50_000, 5)))).await.unwrap();
    drop(tx);
    assert_eq!(put.await.unwrap().unwrap().size, 100_000);
    assert_eq!(store.head(&k).await.unwrap().unwrap().size, 100_000);
    assert_no_temp_files(&f);
}

/// A put whose data fails half-way leaves the key as it was: absent, or the old object.
async fn a_failed_put_leaves_nothing_behind(f: Fixture) {
    let store = ready(&f).await;
    let fresh = key("tracks/failed.m4a");
    let existing = key("tracks/kept.m4a");
    put(store, &existing, b"the old object").await;
    // Small (one PUT on S3) and over 8 MiB (multipart on S3, aborted).
    for (size, k) in [
        (50_000, &fresh),
        (9 << 20, &fresh),
        (50_000, &existing),
        (9 << 20, &existing),
    ] {
        let (tx, mut reader) = fed_reader();
        let put = {
            let store = f.store.clone();
            let k = k.clone();
            tokio::spawn(async move { store.put_stream(&k, &mut reader).await })
        };
        tx.send(Ok(Bytes::from(data(size, 6)))).await.unwrap();
        tx.send(Err(std::io::Error::other("the download broke")))
            .await
            .unwrap();
        let err = put.await.unwrap().expect_err("the put must fail");
        assert!(
            err.to_string().contains(k.as_str()) || err.is_transient(),
            "{err}"
        );
    }
    assert_eq!(store.head(&fresh).await.unwrap(), None);
    assert_eq!(get_all(store, &existing, None).await, b"the old object");
    assert_no_temp_files(&f);
}

/// Over 8 MiB: rust-s3 uploads parts; ranges across a part boundary still read right.
async fn a_large_object_round_trips(f: Fixture) {
    let store = ready(&f).await;
    let k = key("tracks/large.m4a");
    let bytes = data((17 << 20) + 12_345, 7);
    assert_eq!(put(store, &k, &bytes).await, bytes.len() as u64);
    assert_eq!(
        store.head(&k).await.unwrap().unwrap().size,
        bytes.len() as u64
    );
    let boundary = 8u64 << 20;
    let range = ByteRange::new(boundary - 100, boundary + 99);
    assert_eq!(
        get_all(store, &k, Some(range)).await,
        &bytes[(boundary - 100) as usize..(boundary + 100) as usize]
    );
    assert_eq!(get_all(store, &k, None).await, bytes);
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::local()).await
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::s3()).await
                }
            )*
        }
    };
}

contract!(
    ensure_bucket_creates_it_once,
    an_object_reads_back_as_written,
    ranges_return_the_bytes_asked_for,
    missing_objects_are_absent_not_errors,
    a_put_replaces_and_a_delete_removes,
    a_file_is_stored_from_its_path,
    an_object_is_invisible_until_its_put_completes,
    a_failed_put_leaves_nothing_behind,
    a_large_object_round_trips,
);

#[tokio::test]
async fn a_second_store_on_an_existing_bucket_shares_its_objects() {
    let server = S3sFs::start();
    let a = S3Store::new(&server.store_config("shared")).unwrap();
    a.ensure_bucket().await.unwrap();
    put(&a, &key("tracks/a.m4a"), b"from a").await;
    let b = S3Store::new(&server.store_config("shared")).unwrap();
    b.ensure_bucket()
        .await
        .expect("ensure_bucket on an existing bucket");
    assert_eq!(get_all(&b, &key("tracks/a.m4a"), None).await, b"from a");
}

#[tokio::test]
async fn wrong_credentials_are_an_error_not_an_empty_store() {
    let server = S3sFs::start();
    let mut config = server.store_config("jukebox-test");
    config.secret_key = "not-the-secret".to_owned().into();
    let store = S3Store::new(&config).unwrap();
    let err = store.ensure_bucket().await.expect_err("bad credentials");
    assert!(err.is_transient(), "{err:?}");
    let err = store
        .head(&key("tracks/a.m4a"))
        .await
        .expect_err("bad credentials");
    assert!(err.to_string().contains("403"), "{err}");
}

#[test]
fn the_s3_store_does_not_print_its_secrets() {
    let store = S3Store::new(&S3Config {
        endpoint: "http://127.0.0.1:9".into(),
        bucket: "b".into(),
        region: "us-east-1".into(),
        access_key: "AKIA-visible-nowhere".to_owned().into(),
        secret_key: "s3cr3t-visible-nowhere".to_owned().into(),
    })
    .unwrap();
    let debug = format!("{store:?}");
    assert!(!debug.contains("visible-nowhere"), "{debug}");
    assert!(debug.contains("127.0.0.1:9"), "{debug}");
}

//! The downloader killed mid-transcode: after a restart the job completes, and no
//! partial object ever sat under the track's key.

use jukebox::app::Role;
use jukebox_nats::FailPoints;

use crate::helpers::{import_app, nothing_in_progress, tone, Options};
use jukebox_test_support::imports::ALL_BUT_DOWNLOADER;

#[tokio::test]
async fn a_downloader_killed_mid_transcode_finishes_the_job_after_a_restart() {
    let app = import_app(Options {
        roles: ALL_BUT_DOWNLOADER,
        ..Default::default()
    })
    .await;
    let alice = app.user("alice@example.com").await;
    let url = app.tone("crash.mp3", &tone(30));

    let points = FailPoints::armed();
    points.arm("downloader.transcoding", 1);
    let doomed = app.app.start(&[Role::Downloader], points).await;
    let job_id = app.start_import(&alice, &url).await;
    // The downloader dies at the fail point (like kill -9: no ack, tools killed).
    let died = tokio::time::timeout(std::time::Duration::from_secs(60), doomed.wait())
        .await
        .expect("the downloader reaches the fail point");
    assert!(died.is_err(), "the downloader stopped with the fail point");

    // The job shows where it stopped, and is not finished.
    let mut job = serde_json::Value::Null;
    for _ in 0..100 {
        job = app.job(&alice, &job_id).await.json().await.unwrap();
        if job["status"] == "transcoding" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(job["status"], "transcoding", "{job:#}");
    let stored = crate::media::files_under(app.objects.path())
        .into_iter()
        .filter(|p| p.is_file())
        .count();
    assert_eq!(stored, 0, "nothing is stored before the transcode ends");
    // ffmpeg was killed with the job.
    let work = app.work.path().display().to_string();
    for _ in 0..50 {
        if crate::media::processes_mentioning(&work).is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(crate::media::processes_mentioning(&work).is_empty());

    // A fresh downloader gets the job again (after ack_wait) and finishes it.
    let restarted = app
        .app
        .start(&[Role::Downloader], FailPoints::default())
        .await;
    let job = app.finished_job(&alice, &job_id).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    let track_id = job["track_id"].as_str().unwrap();
    let object = app.objects.path().join(format!("tracks/{track_id}.m4a"));
    let probe = crate::media::ffprobe(&object);
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (29.5..=30.5).contains(&duration),
        "a whole object: {duration}"
    );
    assert_eq!(app.library(&alice).await, vec![track_id.to_owned()]);
    // The story: transcoding, then (after the restart) transcoding again is not news;
    // storing and completed follow once.
    let history = app.history("import", &job_id).await;
    let completed = history
        .iter()
        .filter(|(t, _)| t == "ImportCompleted")
        .count();
    assert_eq!(completed, 1);
    assert_eq!(app.history("track", track_id).await.len(), 1);

    let _ = restarted.stop().await;
    nothing_in_progress(&app.app).await;
    assert!(app.leftovers().is_empty(), "{:?}", app.leftovers());
    app.cleanup().await;
}

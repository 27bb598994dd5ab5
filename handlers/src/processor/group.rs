//! Group commit (issue 16): the steps of concurrent commands that touch different
//! aggregates and no access state commit together, one statement and one transaction for
//! the group, instead of one each. A step waits for no timer: a worker takes every step
//! that is waiting when it is free, so a lone command commits alone, and a busy processor
//! commits in groups about as large as the commands in flight.
//!
//! A group is all or nothing (one statement). When it fails (an events primary-key
//! conflict, a deadlock, anything), each of its steps is committed alone with
//! `commit::one`, which answers each its own result: a conflict then reaches only the step
//! that conflicted, which reloads and decides again as before. So the outcome of every
//! step is what committing it alone would have given, and exactly-once rests on the same
//! `fresh` condition per step.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};
use tracing::debug;

use super::commit::{one, Append, Committed};

/// Requests in one group at most.
const MAX_GROUP: usize = 64;

/// A queue and its workers: a free worker takes every request waiting and handles them
/// together. Shared by the group commit and the group load (`load.rs`).
pub(super) struct Grouped<R> {
    queue: mpsc::Sender<R>,
}

impl<R> Clone for Grouped<R> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

impl<R: Send + 'static> Grouped<R> {
    /// Starts `workers` workers handling groups with `handle`; they stop when the last
    /// handle on the queue is dropped.
    pub fn start<F, Fut>(workers: usize, handle: F) -> Self
    where
        F: Fn(Vec<R>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (queue, receiver) = mpsc::channel(MAX_GROUP * workers.max(1) * 2);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..workers.max(1) {
            tokio::spawn(work(receiver.clone(), handle.clone()));
        }
        Self { queue }
    }

    /// Queues `request`; gives it back when no worker is left (shutting down).
    pub async fn send(&self, request: R) -> Result<(), R> {
        self.queue
            .send(request)
            .await
            .map_err(|mpsc::error::SendError(request)| request)
    }
}

async fn work<R, F, Fut>(receiver: Arc<Mutex<mpsc::Receiver<R>>>, handle: F)
where
    F: Fn(Vec<R>) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        let mut group = Vec::new();
        {
            let mut receiver = receiver.lock().await;
            match receiver.recv().await {
                Some(request) => group.push(request),
                None => return,
            }
            while group.len() < MAX_GROUP {
                match receiver.try_recv() {
                    Ok(request) => group.push(request),
                    Err(_) => break,
                }
            }
        }
        handle(group).await;
    }
}

struct Request {
    step: Append,
    reply: oneshot::Sender<Result<Committed, sqlx::Error>>,
}

/// The queue the processor's steps wait in, and its workers.
#[derive(Clone)]
pub(crate) struct CommitGroup {
    requests: Grouped<Request>,
}

impl CommitGroup {
    /// Starts `workers` workers committing from one queue.
    pub fn start(pool: sqlx::PgPool, workers: usize) -> Self {
        let requests = Grouped::start(workers, move |group| commit_group(pool.clone(), group));
        Self { requests }
    }

    /// Commits `step` with whatever else is waiting; the same answer as `commit::one`.
    pub async fn commit(
        &self,
        pool: &sqlx::PgPool,
        step: Append,
    ) -> Result<Committed, sqlx::Error> {
        let (reply, answer) = oneshot::channel();
        match self.requests.send(Request { step, reply }).await {
            Ok(()) => answer.await.unwrap_or_else(|_| {
                Err(sqlx::Error::WorkerCrashed) // the worker's task ended mid-commit
            }),
            // No worker (shutting down): commit it here.
            Err(request) => one(pool, &request.step, None, None).await,
        }
    }
}

/// Commits a group: the steps on distinct aggregates in one statement, in aggregate
/// order (two groups lock their rows in the same order, so they cannot deadlock); a
/// second step on an aggregate already in the group, and every step of a group that
/// failed, alone.
async fn commit_group(pool: sqlx::PgPool, mut group: Vec<Request>) {
    if group.len() == 1 {
        let request = group.pop().expect("one");
        let _ = request
            .reply
            .send(one(&pool, &request.step, None, None).await);
        return;
    }
    group.sort_by(|a, b| a.step.aggregate().cmp(&b.step.aggregate()));
    let (mut together, mut alone) = (Vec::with_capacity(group.len()), Vec::new());
    for request in group {
        let repeated = together
            .last()
            .is_some_and(|last: &Request| last.step.aggregate() == request.step.aggregate());
        if repeated {
            alone.push(request);
        } else {
            together.push(request);
        }
    }
    let steps: Vec<&Append> = together.iter().map(|r| &r.step).collect();
    match super::commit::many(&pool, &steps).await {
        Ok(answers) => {
            for (request, answer) in together.into_iter().zip(answers) {
                let _ = request.reply.send(Ok(answer));
            }
        }
        Err(error) => {
            debug!(%error, steps = together.len(), "group commit failed; committing its steps one by one");
            alone.splice(0..0, together);
        }
    }
    for request in alone {
        let _ = request
            .reply
            .send(one(&pool, &request.step, None, None).await);
    }
}

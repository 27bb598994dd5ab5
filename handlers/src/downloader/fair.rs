//! Round-robin between users (issue 20, ADR 36): the downloader holds more jobs than it
//! runs (its lookahead), and a free slot goes to the next user in turn who has a job
//! waiting, not to the oldest job. So one user's 500-entry playlist does not stall
//! another user's single import: it waits at most for one job of each user ahead of it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use tokio::sync::oneshot;
use uuid::Uuid;

/// `slots` jobs run at once; waiting jobs get a slot user by user, in turn.
pub struct FairSlots {
    slots: usize,
    state: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    running: usize,
    /// Users with a job waiting, in the order they get the next slots.
    turn: VecDeque<Uuid>,
    jobs: HashMap<Uuid, VecDeque<oneshot::Sender<()>>>,
}

/// A running job's slot; dropping it hands the slot to the next user in turn.
pub struct Slot<'a> {
    owner: &'a FairSlots,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.owner.release();
    }
}

impl FairSlots {
    pub fn new(slots: usize) -> Self {
        Self {
            slots: slots.max(1),
            state: Mutex::new(Waiting::default()),
        }
    }

    /// Waits for a slot for a job of `user`. (A wait cancelled just after its slot was
    /// handed over loses that slot; waits are cancelled only when the process stops.)
    pub async fn take(&self, user: Uuid) -> Slot<'_> {
        let handed = {
            let mut guard = self.state.lock().expect("fair slots lock");
            let state = &mut *guard;
            if state.running < self.slots && state.turn.is_empty() {
                state.running += 1;
                return Slot { owner: self };
            }
            let (sender, receiver) = oneshot::channel();
            let queue = state.jobs.entry(user).or_default();
            if queue.is_empty() {
                state.turn.push_back(user);
            }
            queue.push_back(sender);
            receiver
        };
        let _ = handed.await;
        Slot { owner: self }
    }

    fn release(&self) {
        let mut guard = self.state.lock().expect("fair slots lock");
        let state = &mut *guard;
        while let Some(user) = state.turn.pop_front() {
            let Some(queue) = state.jobs.get_mut(&user) else {
                continue;
            };
            let next = queue.pop_front();
            if queue.is_empty() {
                state.jobs.remove(&user);
            } else {
                state.turn.push_back(user);
            }
            // Handed over: the slot stays taken, by the next job.
            if next.is_some_and(|job| job.send(()).is_ok()) {
                return;
            }
        }
        state.running -= 1;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn a_free_slot_goes_to_each_user_in_turn() {
        let slots = Arc::new(FairSlots::new(1));
        let (alice, bob) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let running = slots.take(alice).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for (user, name) in [(alice, "a1"), (alice, "a2"), (alice, "a3"), (bob, "b1")] {
            let (slots, order) = (slots.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let _slot = slots.take(user).await;
                order.lock().unwrap().push(name);
            }));
            // Queued in this order.
            tokio::task::yield_now().await;
        }
        drop(running);
        for job in waiting {
            job.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["a1", "b1", "a2", "a3"]);
        // Every slot came back.
        let _again = slots.take(bob).await;
    }
}

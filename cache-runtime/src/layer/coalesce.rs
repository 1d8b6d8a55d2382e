//! Read coalescing for one remote layer.
//!
//! Under load, many tasks read one layer at once, each for its own key. A
//! read made while the layer is idle goes out on its own, exactly as without
//! coalescing, so a lone caller pays nothing. A read made while others are
//! outstanding is queued, and a flush task, scheduled once for the queue,
//! waits for the end of the scheduler's current round (the reads of the
//! tasks already running join the queue meanwhile) and sends the queue as
//! one batch read (`MGET` on Redis), answering each waiter its own key. It
//! does not wait for outstanding reads: batches are pipelined. The server
//! parses one command instead of dozens and the client sends and parses one
//! reply, which is why cachewright's throughput under concurrency keeps up with
//! (and can exceed) a raw client sending one command per key.
//!
//! Nobody waits forever: a flush task dropped unrun (its runtime shut down)
//! fails the queue at once and clears the way for the next one; one that
//! never runs (spawned on a current-thread runtime nobody drives any more)
//! is replaced by the next read that queues half a timeout later; a batch task
//! dropped midway drops its waiters' answers (a failure for them). A waiter's time limit runs from
//! when it queued: the batch read gets what is left of the earliest waiter's
//! limit, and each waiter also stops waiting at its own limit, so queueing
//! never stretches a call beyond the layer's timeout.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{RemoteLayer, Skip};

/// The most keys one batch read carries; the rest leave in the next one.
const MAX_BATCH: usize = 256;

type Answer = Result<Option<Vec<u8>>, Skip>;

struct Waiter {
    key: String,
    deadline: Instant,
    tx: oneshot::Sender<Answer>,
    id: u64,
}

#[derive(Default)]
struct State {
    /// Reads and batch reads outstanding.
    in_flight: usize,
    queue: Vec<Waiter>,
    /// The flush task on its way for what is queued (its token), and since
    /// when.
    scheduled: Option<(u64, Instant)>,
    /// Numbers waiters and flush tasks.
    next: u64,
}

impl State {
    fn next(&mut self) -> u64 {
        self.next = self.next.wrapping_add(1);
        self.next
    }
}

/// The coalescing state of one layer.
pub(crate) struct Coalescer {
    on: bool,
    state: Mutex<State>,
}

/// What a read does: go out itself or wait for a batch.
pub(crate) enum Turn {
    Direct(InFlight),
    /// Queued: the answer comes on the channel, within the limit; the
    /// number identifies the waiter (see [`Coalescer::withdraw`]).
    Queued(oneshot::Receiver<Answer>, Duration, u64),
}

impl Coalescer {
    pub(crate) fn new(on: bool) -> Self {
        Coalescer {
            on,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a read of `key` out at once when the layer is idle, or queues
    /// it for the next batch.
    pub(crate) fn enter(&self, layer: &Arc<RemoteLayer>, key: &str, limit: Duration) -> Turn {
        if !self.on {
            return Turn::Direct(InFlight { layer: None });
        }
        let mut s = self.lock();
        if s.in_flight == 0 && s.queue.is_empty() {
            s.in_flight += 1;
            return Turn::Direct(InFlight {
                layer: Some(layer.clone()),
            });
        }
        let (tx, rx) = oneshot::channel();
        let now = Instant::now();
        let id = s.next();
        s.queue.push(Waiter {
            id,
            key: key.to_owned(),
            // A limit too large to add is as good as none.
            deadline: now
                .checked_add(limit)
                .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400)),
            tx,
        });
        // A flush scheduled half a timeout ago and not run yet is taken for
        // stranded (its current-thread runtime no longer driven): another
        // one is scheduled, and takes the whole queue.
        let due = s
            .scheduled
            .is_none_or(|(_, at)| now.saturating_duration_since(at) >= limit / 2);
        if due {
            let token = s.next();
            s.scheduled = Some((token, now));
            drop(s);
            schedule(layer, token);
        }
        Turn::Queued(rx, limit, id)
    }

    /// Takes waiter `id` out of the queue if no flush has taken it yet;
    /// returns whether it did (its time ran out before any flush ran).
    pub(crate) fn withdraw(&self, id: u64) -> bool {
        let mut s = self.lock();
        match s.queue.iter().position(|w| w.id == id) {
            Some(at) => {
                s.queue.remove(at);
                if s.queue.is_empty() {
                    s.scheduled = None;
                }
                true
            }
            None => false,
        }
    }

    /// Takes the next batch for a flush task; clears `scheduled` when the
    /// queue is emptied, or schedules another flush for the rest.
    fn take(&self, layer: &Arc<RemoteLayer>) -> Vec<Waiter> {
        let mut s = self.lock();
        let n = s.queue.len().min(MAX_BATCH);
        let batch: Vec<Waiter> = s.queue.drain(..n).collect();
        let more = !s.queue.is_empty();
        let token = more.then(|| s.next());
        s.scheduled = token.map(|t| (t, Instant::now()));
        if !batch.is_empty() {
            s.in_flight += 1;
        }
        drop(s);
        if let Some(token) = token {
            schedule(layer, token);
        }
        batch
    }

    /// Flush task `token` will not run: if it is the one scheduled, what it
    /// was for fails now, so that nobody waits on it, and later reads
    /// schedule a flush of their own. (A flush replaced since is no longer
    /// responsible for the queue.)
    fn abandon(&self, token: u64) {
        let mut s = self.lock();
        if s.scheduled.is_none_or(|(t, _)| t != token) {
            return;
        }
        s.scheduled = None;
        let lost: Vec<Waiter> = std::mem::take(&mut s.queue);
        drop(s);
        drop(lost);
    }
}

/// An outstanding read or batch read; counted out when dropped (done or
/// cancelled).
pub(crate) struct InFlight {
    layer: Option<Arc<RemoteLayer>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(layer) = self.layer.take() {
            let mut s = layer.coalescer().lock();
            s.in_flight = s.in_flight.saturating_sub(1);
        }
    }
}

/// The duty of a scheduled flush task; if the task is dropped unrun (its
/// runtime shut down), the queue fails instead of waiting forever.
struct Duty {
    layer: Option<Arc<RemoteLayer>>,
    token: u64,
}

impl Drop for Duty {
    fn drop(&mut self) {
        if let Some(layer) = self.layer.take() {
            layer.coalescer().abandon(self.token);
        }
    }
}

/// Starts a flush task on the caller's runtime (so that it runs at the end
/// of the round the caller is in), or on cachewright's I/O runtime outside one.
fn schedule(layer: &Arc<RemoteLayer>, token: u64) {
    let duty = Duty {
        layer: Some(layer.clone()),
        token,
    };
    crate::spawn::spawn_io(flush(duty));
}

/// Waits for the end of the scheduler's current round, so that reads made
/// by the tasks already running join the batch, then reads the batch and
/// answers each waiter.
async fn flush(mut duty: Duty) {
    tokio::task::yield_now().await;
    let Some(layer) = duty.layer.take() else {
        return;
    };
    let batch = layer.coalescer().take(&layer);
    if batch.is_empty() {
        return;
    }
    let in_flight = InFlight {
        layer: Some(layer.clone()),
    };
    let now = Instant::now();
    let (live, late): (Vec<Waiter>, Vec<Waiter>) = batch
        .into_iter()
        .filter(|w| !w.tx.is_closed())
        .partition(|w| w.deadline > now);
    if !late.is_empty() {
        layer.queue_stalled(&late[0].key);
        for w in late {
            let _ = w.tx.send(Err(Skip::Failed));
        }
    }
    let Some(limit) = live.iter().map(|w| w.deadline - now).min() else {
        return;
    };
    let (keys, waiters): (Vec<String>, Vec<_>) = live.into_iter().map(|w| (w.key, w.tx)).unzip();
    let answer = layer.batch_read(keys, limit).await;
    drop(in_flight);
    match answer {
        // `batch_read` checked that there is one value per key.
        Ok(values) => {
            for (tx, v) in waiters.into_iter().zip(values) {
                let _ = tx.send(Ok(v));
            }
        }
        Err(skip) => {
            for tx in waiters {
                let _ = tx.send(Err(skip));
            }
        }
    }
}

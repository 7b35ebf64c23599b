//! The API's reads of job objects: `GET P/jobs/<id>` and `GET P/jobs`, answered from the read
//! cache when it has them, else from the store's renderings (kept beside each job's state,
//! so nothing is decoded). A listing too large to keep is written as the store is read,
//! so listing 100,000 jobs holds a few megabytes, not all of them.

use bytes::Bytes;
use futures_util::TryStreamExt;
use tokio::sync::{mpsc, oneshot};

use super::cache::LISTING_LIMIT;
use super::{RunState, Scheduler, SchedulerError};
use crate::job::JobId;
use crate::store::{StoredView, ViewBody, ViewFilter};

/// Bytes per piece of a streamed listing.
const CHUNK: usize = 64 << 10;

/// `GET P/jobs`'s body: the JSON array of the listed jobs.
#[derive(Debug)]
pub enum JobsListing {
    /// All of it.
    Whole(Bytes),
    /// Its first bytes, the rest to come as the store is read. An error on the way ends the
    /// stream early (the response is already under way).
    Streamed {
        /// The first piece.
        first: Bytes,
        /// The following pieces.
        rest: mpsc::Receiver<Result<Bytes, SchedulerError>>,
    },
}

impl Scheduler {
    /// One job's JSON object (CONTRACT §1). While stopped only pending jobs are visible, as
    /// in APScheduler (whose stores are not open then).
    ///
    /// # Errors
    /// `JobNotFound`; store failures.
    pub async fn get_job_json(&self, id: &JobId) -> Result<String, SchedulerError> {
        // While stopped only pending jobs are visible, which the cache does not record: the
        // store says (and a stopped scheduler is read rarely).
        let stopped = self.state() == RunState::Stopped;
        let cache = self.inner.cache.as_ref().filter(|_| !stopped);
        if let Some(json) = cache.and_then(|cache| cache.job(id)) {
            return Ok(json.to_string());
        }
        let read_at = cache.map(|cache| (cache, cache.generation()));
        let view = match self.inner.store.get_job_view(id).await? {
            Some(view) if view.pending || !stopped => view,
            _ => return Err(SchedulerError::JobNotFound(id.to_string())),
        };
        let json = self.view_text(view);
        if let Some((cache, generation)) = read_at {
            cache.keep_job(generation, id, json.as_str().into());
        }
        Ok(json)
    }

    /// A stored view's text: as the store kept it, or rendered from the job.
    fn view_text(&self, view: StoredView) -> String {
        match view.body {
            ViewBody::Rendered(json) => json,
            ViewBody::Job(job) => self.render(&job),
        }
    }

    /// Every job as a JSON array in the contract's order (pending jobs only while stopped).
    ///
    /// # Errors
    /// Store failures before the first byte (later ones end the stream).
    pub async fn list_jobs_json(&self) -> Result<JobsListing, SchedulerError> {
        let pending_only = self.state() == RunState::Stopped;
        let cache = self.inner.cache.as_ref();
        if let Some(body) = cache.and_then(|cache| cache.listing(pending_only)) {
            return Ok(JobsListing::Whole(body));
        }
        let read_at = cache.map(|cache| (cache, cache.generation()));
        let (first_sender, first) = oneshot::channel();
        let (more, rest) = mpsc::channel(2);
        tokio::spawn(self.clone().write_listing(pending_only, first_sender, more));
        let first = first.await.map_err(|_| {
            SchedulerError::Internal(anyhow::anyhow!("the listing task ended early"))
        })??;
        match first {
            First::Whole(body) => {
                if let Some((cache, generation)) = read_at {
                    cache.keep_listing(generation, pending_only, body.clone());
                }
                Ok(JobsListing::Whole(body))
            }
            First::Part(first) => Ok(JobsListing::Streamed { first, rest }),
        }
    }

    /// Reads the listing from the store: whole into `first` when it fits in
    /// [`LISTING_LIMIT`], else that much into `first` and [`CHUNK`]-sized pieces into `more`.
    async fn write_listing(
        self,
        pending_only: bool,
        first: oneshot::Sender<Result<First, SchedulerError>>,
        more: mpsc::Sender<Result<Bytes, SchedulerError>>,
    ) {
        let mut out = Pieces {
            first: Some(first),
            more,
        };
        // While stopped only pending jobs are listed.
        let filter = if pending_only {
            ViewFilter::Pending
        } else {
            ViewFilter::All
        };
        let mut views = self.inner.store.stream_job_views(filter);
        let mut buffer = Vec::with_capacity(CHUNK);
        buffer.push(b'[');
        let mut empty = true;
        loop {
            let view = match views.try_next().await {
                Ok(Some(view)) => view,
                Ok(None) => break,
                Err(error) => {
                    out.send(Err(error.into()), false).await;
                    return;
                }
            };
            if !empty {
                buffer.push(b',');
            }
            empty = false;
            buffer.extend_from_slice(self.view_text(view).as_bytes());
            let limit = if out.first.is_some() {
                LISTING_LIMIT
            } else {
                CHUNK
            };
            if buffer.len() >= limit {
                let piece = std::mem::replace(&mut buffer, Vec::with_capacity(CHUNK));
                if !out.send(Ok(piece.into()), false).await {
                    return; // The client went away.
                }
            }
        }
        buffer.push(b']');
        out.send(Ok(buffer.into()), true).await;
    }
}

/// Where the listing task sends its pieces: the first one answers the request, the rest
/// follow in the response body.
struct Pieces {
    first: Option<oneshot::Sender<Result<First, SchedulerError>>>,
    more: mpsc::Sender<Result<Bytes, SchedulerError>>,
}

impl Pieces {
    /// Sends the next piece (`last` when it ends the listing); false when nobody listens.
    async fn send(&mut self, piece: Result<Bytes, SchedulerError>, last: bool) -> bool {
        match self.first.take() {
            Some(first) => first
                .send(piece.map(|bytes| {
                    if last {
                        First::Whole(bytes)
                    } else {
                        First::Part(bytes)
                    }
                }))
                .is_ok(),
            None => self.more.send(piece).await.is_ok(),
        }
    }
}

/// The listing's first piece.
enum First {
    /// All of it.
    Whole(Bytes),
    /// Its first [`LISTING_LIMIT`] bytes or so.
    Part(Bytes),
}

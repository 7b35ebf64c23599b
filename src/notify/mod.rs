//! Notifications: telling someone when a run fails, times out, is missed, recovers or runs
//! long, through webhooks (`[[notify.webhooks]]`), chosen per job (`notify`) or for every job.
//!
//! - [`settings`]: the config's `[notify]`.
//! - [`Notifier`] (here): which webhooks hear of an event, by whose rule, and writing each
//!   delivery to the store's outbox ([`crate::store::Outbox`]) in the moment the scheduler
//!   reports the event. Nothing is sent from the run's path.
//! - [`deliver`]: the task that sends what the outbox holds, claims first (so daemons
//!   sharing a store send each delivery once), retries with backoff until a 2xx or the
//!   give-up age.
//! - [`message`]: the body, its chat `text` line, and the signature.
//!
//! Which rule applies to a job's event at a webhook: the job's own `notify`, when it names
//! the webhook; else the webhook's own (`events`, `after_consecutive_failures`,
//! `final_attempt_only`), when its `jobs` list is absent or names the job.

pub mod deliver;
pub mod message;
pub mod settings;

use std::sync::Arc;

use chrono::Utc;

use crate::job::{Job, NotifyEvent, RunRecord, RunStatus};
use crate::store::{Delivery, NotificationRecord, Store};
use crate::telemetry::logged;

pub use settings::{NotifySettings, Webhook};

/// How many of a job's latest runs are read to count failures in a row, at most.
const MAX_FAILURE_LOOKBACK: u32 = 1000;

/// At most one `missed` event per job in this long: a job whose fire times come faster than
/// the scheduler's passes misses some at every pass (ten a second), which must not become
/// ten messages a second. The next event after the pause carries its own pass's count.
const MISSED_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The outbox's name for a job's own target (`notify.url`): no configured webhook's name has
/// a colon.
pub const OWN_TARGET: &str = "job:";

/// One webhook's rule for one job.
#[derive(Debug, Clone)]
struct Rule<'a> {
    webhook: std::borrow::Cow<'a, str>,
    events: &'a [NotifyEvent],
    after_consecutive_failures: u32,
    final_attempt_only: bool,
}

/// Writes the deliveries events call for, and wakes the delivery task.
#[derive(Debug)]
pub struct Notifier {
    settings: Arc<NotifySettings>,
    store: Arc<dyn Store>,
    /// This daemon's host name, as run records name it.
    node: String,
    /// The start of a run's link; the run id ends it.
    link_prefix: String,
    wake: Arc<tokio::sync::Notify>,
    /// When each job's last `missed` event was written (see [`MISSED_EVERY`]).
    last_missed: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

impl Notifier {
    /// A notifier writing to `store`'s outbox; runs are linked as `link_prefix<run id>`.
    pub fn new(
        settings: NotifySettings,
        store: Arc<dyn Store>,
        node: String,
        link_prefix: String,
    ) -> Notifier {
        Notifier {
            settings: Arc::new(settings),
            store,
            node,
            link_prefix,
            wake: Arc::new(tokio::sync::Notify::new()),
            last_missed: std::sync::Mutex::default(),
        }
    }

    /// The task that delivers what this notifier writes (`owner` names this daemon's claims),
    /// counting its attempts in `metrics` when given.
    pub fn deliverer(
        &self,
        owner: String,
        metrics: Option<crate::metrics::Metrics>,
    ) -> deliver::Deliverer {
        deliver::Deliverer::new(
            self.settings.clone(),
            self.store.clone(),
            owner,
            self.wake.clone(),
            metrics,
        )
    }

    /// Whether a webhook of this name is configured.
    pub fn knows(&self, name: &str) -> bool {
        self.settings.webhook(name).is_some()
    }

    /// The rules under which `job`'s `event` is sent, one per webhook.
    fn rules<'a>(&'a self, job: &'a Job, event: NotifyEvent) -> Vec<Rule<'a>> {
        let own = job.policies.notify.as_ref();
        self.settings
            .webhooks
            .iter()
            .filter_map(|webhook| {
                let rule = match own.filter(|rule| rule.webhooks.contains(&webhook.name)) {
                    Some(rule) => Rule {
                        webhook: webhook.name.as_str().into(),
                        events: &rule.events,
                        after_consecutive_failures: rule.after_consecutive_failures,
                        final_attempt_only: rule.final_attempt_only,
                    },
                    None if webhook
                        .jobs
                        .as_ref()
                        .is_none_or(|jobs| jobs.iter().any(|id| id == job.id.as_str())) =>
                    {
                        Rule {
                            webhook: webhook.name.as_str().into(),
                            events: &webhook.events,
                            after_consecutive_failures: webhook.after_consecutive_failures,
                            final_attempt_only: webhook.final_attempt_only,
                        }
                    }
                    None => return None,
                };
                rule.events.contains(&event).then_some(rule)
            })
            .chain(
                own.filter(|rule| rule.url.is_some() && rule.events.contains(&event))
                    .map(|rule| Rule {
                        webhook: format!("{OWN_TARGET}{}", job.id).into(),
                        events: &rule.events,
                        after_consecutive_failures: rule.after_consecutive_failures,
                        final_attempt_only: rule.final_attempt_only,
                    }),
            )
            .collect()
    }

    /// A run ended: `failed` and `timed_out` (unless `retrying` and the rule waits for the
    /// final attempt, or fewer runs than the rule's count failed in a row), `recovered` for
    /// a success after failures.
    pub async fn run_ended(&self, job: &Job, run: &RunRecord, retrying: bool) {
        let event = match run.status {
            RunStatus::Failed => NotifyEvent::Failed,
            RunStatus::TimedOut => NotifyEvent::TimedOut,
            RunStatus::Succeeded => NotifyEvent::Recovered,
            _ => return,
        };
        let rules = self.rules(job, event);
        if rules.is_empty() {
            return;
        }
        let history = match self.history(job, run, &rules).await {
            Some(history) => history,
            None => return,
        };
        let sent: Vec<&str> = rules
            .iter()
            .filter(|rule| match event {
                NotifyEvent::Recovered => history.failed_before,
                _ => {
                    !(retrying && rule.final_attempt_only)
                        && history.failures_in_a_row >= rule.after_consecutive_failures
                }
            })
            .map(|rule| rule.webhook.as_ref())
            .collect();
        self.enqueue(event, job, run, 0, &sent).await;
    }

    /// Fire times were recorded `missed` (`count` of them; `run` the latest record): told at
    /// most once a minute per job.
    pub async fn missed(&self, job: &Job, run: &RunRecord, count: u64) {
        {
            let now = std::time::Instant::now();
            let mut last = self
                .last_missed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last
                .get(job.id.as_str())
                .is_some_and(|at| now.duration_since(*at) < MISSED_EVERY)
            {
                return;
            }
            // Bounded: a job's entry goes once its minute is over.
            last.retain(|_, at| now.duration_since(*at) < MISSED_EVERY);
            last.insert(job.id.to_string(), now);
        }
        let rules = self.rules(job, NotifyEvent::Missed);
        let sent: Vec<&str> = rules.iter().map(|rule| rule.webhook.as_ref()).collect();
        self.enqueue(NotifyEvent::Missed, job, run, count, &sent)
            .await;
    }

    /// A run is still going after its job's `notify.expected_duration`.
    pub async fn long_running(&self, job: &Job, run: &RunRecord) {
        let rules = self.rules(job, NotifyEvent::LongRunning);
        let sent: Vec<&str> = rules.iter().map(|rule| rule.webhook.as_ref()).collect();
        self.enqueue(NotifyEvent::LongRunning, job, run, 0, &sent)
            .await;
    }

    /// What the job's latest runs say about `run`: how many in a row failed (this one
    /// included), and whether the run before it failed. Read only when a rule needs it;
    /// `None` when the store cannot say (logged: nothing is sent on a guess).
    async fn history(&self, job: &Job, run: &RunRecord, rules: &[Rule<'_>]) -> Option<History> {
        let needed = rules
            .iter()
            .map(|rule| rule.after_consecutive_failures)
            .max()
            .unwrap_or(1);
        if run.status != RunStatus::Succeeded && needed <= 1 {
            return Some(History {
                failures_in_a_row: 1,
                failed_before: false,
            });
        }
        let limit = (needed + 10).min(MAX_FAILURE_LOOKBACK);
        let runs = match self.store.get_runs(&job.id, limit, None).await {
            Ok(runs) => runs,
            Err(error) => {
                tracing::error!(job_id = %logged(&job.id), "Notifications: cannot read the job's runs: {error:#}");
                return None;
            }
        };
        // Newest first; only the runs made before this one that ended by running count (a
        // skipped or missed fire time neither failed nor succeeded).
        let mut older = runs.iter().filter(|r| {
            r.id < run.id
                && matches!(
                    r.status,
                    RunStatus::Succeeded | RunStatus::Failed | RunStatus::TimedOut
                )
        });
        Some(if run.status == RunStatus::Succeeded {
            History {
                failures_in_a_row: 0,
                failed_before: older
                    .next()
                    .is_some_and(|r| r.status != RunStatus::Succeeded),
            }
        } else {
            let before = older
                .take_while(|r| r.status != RunStatus::Succeeded)
                .count();
            History {
                failures_in_a_row: u32::try_from(before + 1).unwrap_or(u32::MAX),
                failed_before: false,
            }
        })
    }

    /// Writes one delivery of `event` per webhook in `webhooks`, and wakes the task.
    async fn enqueue(
        &self,
        event: NotifyEvent,
        job: &Job,
        run: &RunRecord,
        missed: u64,
        webhooks: &[&str],
    ) {
        if webhooks.is_empty() {
            return;
        }
        let now = Utc::now();
        let link = format!("{}{}", self.link_prefix, run.id);
        let about = message::About {
            event,
            job,
            run,
            node: &self.node,
            link: &link,
            missed,
        };
        let body = message::body(&about, now).to_string();
        let batch: Vec<NotificationRecord> = webhooks
            .iter()
            .map(|webhook| NotificationRecord {
                id: uuid::Uuid::now_v7().to_string(),
                created_at: now,
                event: event.as_str().to_owned(),
                job_id: job.id.to_string(),
                run_id: run.id.to_string(),
                webhook: (*webhook).to_owned(),
                body: body.clone(),
                status: Delivery::Pending,
                attempts: 0,
                next_attempt_at: Some(now),
                last_error: None,
                delivered_at: None,
            })
            .collect();
        match self.store.enqueue_notifications(&batch).await {
            Ok(()) => self.wake.notify_one(),
            Err(error) => tracing::error!(
                job_id = %logged(&job.id),
                run_id = %run.id,
                "Notifications: could not write the {} event to the outbox: {error:#}",
                event.as_str()
            ),
        }
    }
}

/// What a job's latest runs say about one run.
struct History {
    failures_in_a_row: u32,
    failed_before: bool,
}

//! The cron trigger: `[[trigger.cron]]` schedules (seconds first) calling the spin-trigger-cron plugin's `fermyon:spin-cron@2.0.0` export.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use chrono::Utc;
use wasmtime::component::Linker;

use crate::instance::{ComponentCapabilities, InstanceState};
use crate::loader::Prepared;
use crate::stats::InstantiationStats;

wasmtime::component::bindgen!({
    path: "wit/spin-cron",
    world: "spin-cron",
    exports: { default: async },
});

use fermyon::spin_cron::cron_types::Error as CronError;

/// The type-only interface a cron component imports with its world.
const CRON_TYPES: &str = "fermyon:spin-cron/cron-types@2.0.0";

/// Why a cron trigger could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum CronTriggerError {
    /// The expression is not a six- or seven-field cron expression.
    #[error("trigger.cron for `{component}`: cron_expression `{expression}`: {reason}")]
    Expression {
        component: String,
        expression: String,
        reason: String,
    },
    /// No cron trigger names that component.
    #[error("no [[trigger.cron]] runs component `{0}`")]
    UnknownComponent(String),
}

/// Adds the (empty, type-only) `cron-types` instance that cron components import.
pub fn link<T: 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.instance(CRON_TYPES)?;
    Ok(())
}

/// Parses a cron expression the way the plugin reads it: seconds first.
pub fn parse_schedule(
    component: &str,
    expression: &str,
) -> Result<cron::Schedule, CronTriggerError> {
    cron::Schedule::from_str(expression).map_err(|e| CronTriggerError::Expression {
        component: component.into(),
        expression: expression.into(),
        reason: e.to_string(),
    })
}

/// A cron component ready to run.
pub struct CronComponent {
    pre: SpinCronPre<InstanceState>,
    capabilities: ComponentCapabilities,
}

impl CronComponent {
    /// Checks that the component exports `handle-cron-event`.
    pub fn new(prepared: Prepared) -> wasmtime::Result<Self> {
        Ok(Self {
            pre: SpinCronPre::new(prepared.pre)?,
            capabilities: prepared.capabilities,
        })
    }
}

/// One `[[trigger.cron]]`.
pub struct CronJob {
    /// The component's id.
    pub component: String,
    /// The expression as written.
    pub expression: String,
    schedule: cron::Schedule,
    ready: Arc<CronComponent>,
}

impl CronJob {
    /// A job for a parsed schedule and a ready component.
    pub fn new(
        component: String,
        expression: String,
        schedule: cron::Schedule,
        ready: Arc<CronComponent>,
    ) -> Self {
        Self {
            component,
            expression,
            schedule,
            ready,
        }
    }
}

/// The cron trigger of an application.
pub struct CronTrigger {
    jobs: Vec<CronJob>,
    stats: Arc<InstantiationStats>,
}

impl CronTrigger {
    /// A cron trigger over its jobs.
    pub fn new(jobs: Vec<CronJob>, stats: Arc<InstantiationStats>) -> Self {
        Self { jobs, stats }
    }

    /// The jobs, in manifest order.
    pub fn jobs(&self) -> &[CronJob] {
        &self.jobs
    }

    /// Runs every job on its schedule until `shutdown` resolves. Ticks of one job
    /// never overlap: a tick that is still running when the next is due delays it.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..self.jobs.len() {
            let trigger = self.clone();
            tasks.spawn(async move {
                let job = &trigger.jobs[index];
                loop {
                    let Some(next) = job.schedule.upcoming(Utc).next() else {
                        tracing::info!(component = %job.component, "cron schedule has no more ticks");
                        return;
                    };
                    let wait = (next - Utc::now()).to_std().unwrap_or_default();
                    tokio::time::sleep(wait).await;
                    let timestamp = u64::try_from(next.timestamp()).unwrap_or_default();
                    // The outcome is logged inside; a failing tick never stops the schedule.
                    let _ = trigger.tick(job, timestamp).await;
                }
            });
        }
        shutdown.await;
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }

    /// Runs every cron job of `component` once, now, as a tick would.
    pub async fn fire(&self, component: &str) -> wasmtime::Result<()> {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut found = false;
        for job in self.jobs.iter().filter(|j| j.component == component) {
            found = true;
            self.tick(job, timestamp).await?;
        }
        if found {
            Ok(())
        } else {
            Err(CronTriggerError::UnknownComponent(component.into()).into())
        }
    }

    /// One tick: a fresh instance, one call, one log line.
    async fn tick(&self, job: &CronJob, timestamp: u64) -> wasmtime::Result<()> {
        let start = Instant::now();
        let result = self.call(job, timestamp).await;
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        match &result {
            Ok(()) => tracing::info!("cron {} ok {ms:.2}ms", job.component),
            Err(e) => tracing::error!("cron {} failed {ms:.2}ms: {e:#}", job.component),
        }
        result
    }

    async fn call(&self, job: &CronJob, timestamp: u64) -> wasmtime::Result<()> {
        let ready = &job.ready;
        let mut store = ready.capabilities.new_store(ready.pre.engine());
        let instance = self
            .stats
            .time(ready.pre.instantiate_async(&mut store))
            .await?;
        match instance
            .call_handle_cron_event(&mut store, Metadata { timestamp })
            .await?
        {
            Ok(()) => Ok(()),
            Err(CronError::Other(message)) => {
                Err(wasmtime::format_err!("component returned error: {message}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_have_seconds_first() {
        let schedule = parse_schedule("c", "0 * * * * *").unwrap();
        let next = schedule.upcoming(Utc).next().unwrap();
        assert_eq!(next.timestamp() % 60, 0);
        assert!(parse_schedule("c", "*/2 * * * * *").is_ok());
        assert!(parse_schedule("c", "not cron").is_err());
    }
}

//! What runs beside the HTTP server — a poller per lane (the event source mappings) and the
//! attempt sweep (the schedule) — and stopping it gracefully: once stopped, no batch and no
//! sweep starts, and the ones in hand finish.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use email_worker::Worker;
use exam_api::sweep::AttemptSweeper;
use oes_domain::ports::{LaneSwitch, MessageQueues};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The background tasks of one `oes-local`.
pub struct Background {
    stop: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Background {
    /// Starts the lanes' pollers driving `worker` and the attempt sweep every
    /// [`crate::schedule::SWEEP_EVERY`].
    pub fn start(
        queues: &Arc<dyn MessageQueues>,
        lanes: &Arc<dyn LaneSwitch>,
        worker: &Worker,
        sweeper: AttemptSweeper,
    ) -> Self {
        let stop = CancellationToken::new();
        let mut tasks = crate::pollers::spawn(queues, lanes, worker, &stop);
        tasks.push(crate::schedule::spawn(
            Arc::new(sweeper),
            crate::schedule::SWEEP_EVERY,
            &stop,
        ));
        Self {
            stop,
            tasks: Mutex::new(tasks),
        }
    }

    /// `Err` naming how many tasks have ended although no stop was asked for (a panic in a
    /// poller or the sweep): from then on a lane's emails are not sent, or attempts not
    /// closed, until `oes-local` is started again.
    pub fn running(&self) -> Result<(), String> {
        if self.stop.is_cancelled() {
            return Err("stopping".into());
        }
        let tasks = self
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ended(&tasks, "the lanes' pollers and the sweep")
    }

    /// Stops every task and waits for them to finish what they hold, at most `within`; whether
    /// they all did (the ones still running then are aborted).
    pub async fn stop(&self, within: Duration) -> bool {
        self.stop.cancel();
        let tasks = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        let finished = tokio::time::timeout(within, futures_util::future::join_all(tasks))
            .await
            .is_ok();
        if !finished {
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
        }
        finished
    }
}

/// `Err` if any of `tasks` has ended (none of them ends before it is stopped).
fn ended(tasks: &[JoinHandle<()>], what: &str) -> Result<(), String> {
    match tasks.iter().filter(|task| task.is_finished()).count() {
        0 => Ok(()),
        n => Err(format!(
            "{n} of {} of {what} ended: restart oes-local",
            tasks.len()
        )),
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_ended_is_told() {
        let tasks = vec![
            tokio::spawn(std::future::pending::<()>()),
            tokio::spawn(async { panic!("a poller's bug") }),
        ];
        while !tasks[1].is_finished() {
            tokio::task::yield_now().await;
        }
        let told = ended(&tasks, "the tasks").expect_err("one ended");
        assert!(told.starts_with("1 of 2 of the tasks ended"), "{told}");
        assert_eq!(ended(&tasks[..1], "the tasks"), Ok(()));
    }
}

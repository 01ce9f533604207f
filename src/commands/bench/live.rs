//! While `twip bench` runs: the progress line on a terminal and Ctrl-C, which stops the run
//! and still prints its report.

use std::io::Write as _;
use std::time::Duration;

use crate::load::{Handle, Outcome};
use crate::ui::Ui;

/// Waits for the run, drawing the progress line on a terminal (stderr) every 250 ms and
/// stopping the run on Ctrl-C. Returns the outcome and whether Ctrl-C stopped it.
pub(super) async fn watch(
    handle: &Handle,
    done: impl std::future::Future<Output = anyhow::Result<Outcome>>,
    interrupt: &mut Interrupt,
    ui: &Ui,
) -> anyhow::Result<(Outcome, bool)> {
    tokio::pin!(done);
    let live = ui.interactive && !ui.quiet;
    let tick = Duration::from_millis(250);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut interrupted = false;
    let mut last = (0u64, handle.start);
    let outcome = loop {
        tokio::select! {
            o = &mut done => break o?,
            _ = interrupt.recv(), if !interrupted => {
                interrupted = true;
                handle.stop();
            }
            _ = ticker.tick(), if live => {
                let (resp, errs) = handle.progress();
                let now = std::time::Instant::now();
                let dt = (now - last.1).as_secs_f64();
                let rate = if dt > 0.0 { (resp - last.0) as f64 / dt } else { 0.0 };
                last = (resp, now);
                let elapsed = (now - handle.start).as_secs_f64();
                let mut err = std::io::stderr().lock();
                let _ = write!(
                    err,
                    "\r\x1b[2K  {elapsed:6.1}s  {resp} responses  {rate:.0}/s  {errs} errors"
                );
                let _ = err.flush();
            }
        }
    };
    if live {
        eprint!("\r\x1b[2K");
    }
    Ok((outcome, interrupted))
}

/// Ctrl-C, listened to from before the first request (so it never kills the run).
pub(super) struct Interrupt {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupt {
    pub(super) fn new() -> anyhow::Result<Self> {
        Ok(Interrupt {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?,
        })
    }

    pub(super) async fn recv(&mut self) {
        #[cfg(unix)]
        {
            if self.signal.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

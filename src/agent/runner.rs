//! The agent's loop (`twip agent`): runs each controller's round when it is due, one log line
//! per round (`controller: decision`), keeps each controller's last decision in the swarm
//! ([`crate::engine::records`]) and backs a failing controller off (5 s, doubled per failure
//! in a row, at most 5 min). It ends on the future `stop` (SIGTERM, SIGINT), between rounds.
//! With no controller it idles until stopped (still answering requests, with an error).
//!
//! Requests ([`crate::engine::requests`], written by `twip certs renew` while the agent runs)
//! are looked for every [`POLL`] (one list of configs) while waiting for the next due round.
//! A request is given to its controller ([`Controller::request`]), whose round then runs at
//! once; its record carries the request's id, and the request is removed once that record is
//! written. A request that no controller takes (none of that name, or it refuses) is answered
//! by an error record; one older than [`requests::MAX_AGE`] is removed unanswered.
//!
//! The schedule is pure ([`Schedule`]): times are durations since the loop started, so it is
//! tested without a clock or a daemon.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{AgentContext, Controller, Round};
use crate::engine::records::{self, Record};
use crate::engine::requests::{self, Pending};

/// The name of the agent's own record (its start), beside the controllers'.
pub const AGENT_RECORD: &str = "agent";

/// The first wait after a failed round.
pub const BACKOFF_MIN: Duration = Duration::from_secs(5);
/// The longest wait after failed rounds.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// How often the agent looks for requests between rounds.
pub const POLL: Duration = Duration::from_secs(3);

/// The wait after FAILURES failed rounds in a row (1 or more): [`BACKOFF_MIN`] doubled per
/// further failure, at most [`BACKOFF_MAX`].
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (BACKOFF_MIN * 2u32.pow(doublings)).min(BACKOFF_MAX)
}

/// When each controller is due, as time since the loop started, and its failures in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    due: Vec<Duration>,
    failures: Vec<u32>,
}

impl Schedule {
    /// N controllers, all due at once (their first rounds run in their order).
    pub fn new(n: usize) -> Schedule {
        Schedule {
            due: vec![Duration::ZERO; n],
            failures: vec![0; n],
        }
    }

    /// The controller due first (the first in order among equals) and when; `None` without
    /// controllers.
    pub fn next(&self) -> Option<(usize, Duration)> {
        self.due
            .iter()
            .enumerate()
            .min_by_key(|(i, d)| (**d, *i))
            .map(|(i, d)| (i, *d))
    }

    /// Controller I's round ended at NOW: after a success it runs again after the `next`
    /// it asked for, after a failure after [`backoff`] of its failures in a row. Returns the
    /// wait.
    pub fn done(&mut self, i: usize, now: Duration, outcome: Result<Duration, ()>) -> Duration {
        let wait = match outcome {
            Ok(next) => {
                self.failures[i] = 0;
                next
            }
            Err(()) => {
                self.failures[i] += 1;
                backoff(self.failures[i])
            }
        };
        self.due[i] = now + wait;
        wait
    }

    /// Controller I's failures in a row.
    pub fn failures(&self, i: usize) -> u32 {
        self.failures[i]
    }

    /// What the loop does next, and when: the round due first when it is due before
    /// NEXT_POLL (the next look for requests), else that look.
    pub fn wake(&self, next_poll: Duration) -> (Duration, Wake) {
        match self.next() {
            Some((i, due)) if due < next_poll => (due, Wake::Round(i)),
            _ => (next_poll, Wake::Poll),
        }
    }

    /// Controller I was asked for a round at NOW: it is due now (sooner, never later).
    pub fn asked(&mut self, i: usize, now: Duration) {
        self.due[i] = self.due[i].min(now);
    }
}

/// What the loop wakes up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Controller I's round.
    Round(usize),
    /// A look for requests.
    Poll,
}

/// The log line of a round: `name: decision (next in 30s)`, or the error and the back-off.
pub fn log_line(name: &str, outcome: &Result<Round, String>, wait: Duration) -> String {
    let wait = humantime::format_duration(Duration::from_secs(wait.as_secs()));
    match outcome {
        Ok(r) => format!("{name}: {} (next in {wait})", r.decision),
        Err(e) => format!("{name}: error: {e} (trying again in {wait})"),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs CONTROLLERS until STOP completes; LOG takes each line the agent prints.
pub async fn run(
    cx: &AgentContext,
    mut controllers: Vec<Box<dyn Controller>>,
    stop: impl Future<Output = ()>,
    log: &dyn Fn(&str),
) {
    tokio::pin!(stop);
    let names: Vec<&str> = controllers.iter().map(|c| c.name()).collect();
    let started = if controllers.is_empty() {
        "started; no controller has work, idling until stopped".to_string()
    } else {
        format!("started; controllers: {}", names.join(", "))
    };
    log(&started);
    // The agent's own record: when it (re)started, and with which controllers.
    let record = Record {
        controller: AGENT_RECORD.to_string(),
        decision: started,
        error: false,
        at: unix_now(),
        request: None,
        outcome: None,
    };
    if let Err(e) = records::write(&cx.docker, &cx.config.stack, &record).await {
        log(&format!("the start was not recorded: {e}"));
    }
    let start = tokio::time::Instant::now();
    let mut schedule = Schedule::new(controllers.len());
    // Per controller: the request its next round answers (config name, id).
    let mut asked: Vec<Option<Pending>> = vec![None; controllers.len()];
    let mut next_poll = Duration::ZERO;
    let mut polls_failing = false;
    loop {
        let (at, wake) = schedule.wake(next_poll);
        tokio::select! {
            _ = stop.as_mut() => break,
            _ = tokio::time::sleep_until(start + at) => {}
        }
        let i = match wake {
            Wake::Poll => {
                match requests::list(&cx.docker, &cx.config.stack, None).await {
                    Ok(pending) => {
                        polls_failing = false;
                        let now = start.elapsed();
                        for p in pending {
                            take(cx, &mut controllers, &mut schedule, &mut asked, p, now, log)
                                .await;
                        }
                    }
                    // Said once, not every few seconds while the engine is away.
                    Err(e) if !polls_failing => {
                        polls_failing = true;
                        log(&format!("requests could not be read: {e}"));
                    }
                    Err(_) => {}
                }
                next_poll = start.elapsed() + POLL;
                continue;
            }
            Wake::Round(i) => i,
        };
        // A round is not cut short by a signal: it ends, then the loop does.
        let outcome = controllers[i].tick(cx).await.map_err(|e| format!("{e:#}"));
        let now = start.elapsed();
        let wait = schedule.done(i, now, outcome.as_ref().map(|r| r.next).map_err(|_| ()));
        let name = controllers[i].name();
        log(&log_line(name, &outcome, wait));
        let answered = asked[i].take();
        let record = Record {
            controller: name.to_string(),
            decision: match &outcome {
                Ok(r) => r.decision.clone(),
                Err(e) => e.clone(),
            },
            error: outcome.is_err(),
            at: unix_now(),
            request: answered.as_ref().map(|p| p.request.id.clone()),
            outcome: match &outcome {
                Ok(r) => r.outcome.map(str::to_string),
                Err(_) => None,
            },
        };
        if let Err(e) = records::write(&cx.docker, &cx.config.stack, &record).await {
            log(&format!("{name}: its decision was not recorded: {e}"));
        }
        if let Some(p) = answered {
            if let Err(e) = requests::remove(&cx.docker, &p.name).await {
                log(&format!(
                    "{name}: the answered request was not removed: {e}"
                ));
            }
        }
    }
    log("stopping");
}

/// A pending request P found at NOW: given to its controller, whose round is then due now;
/// answered at once with an error when no controller takes it; removed when stale. One its
/// controller already holds is left alone.
async fn take(
    cx: &AgentContext,
    controllers: &mut [Box<dyn Controller>],
    schedule: &mut Schedule,
    asked: &mut [Option<Pending>],
    p: Pending,
    now: Duration,
    log: &dyn Fn(&str),
) {
    if asked.iter().flatten().any(|a| a.name == p.name) {
        return;
    }
    let stack = &cx.config.stack;
    let r = &p.request;
    if r.stale(unix_now()) || r.controller.is_empty() {
        log(&format!(
            "a request to {} was dropped unanswered (stale or unreadable)",
            if r.controller.is_empty() {
                "?"
            } else {
                &r.controller
            }
        ));
        let _ = requests::remove(&cx.docker, &p.name).await;
        return;
    }
    let found = controllers.iter().position(|c| c.name() == r.controller);
    let taken = match found {
        Some(i) => controllers[i].request(r).map(|()| i),
        None => Err(format!("this agent runs no {} controller", r.controller)),
    };
    match taken {
        Ok(i) => {
            log(&format!(
                "{}: asked for a round now{} (request {})",
                r.controller,
                if r.force { ", forced" } else { "" },
                r.id
            ));
            schedule.asked(i, now);
            // A replaced request's answer goes to the newer one.
            asked[i] = Some(p);
        }
        Err(e) => {
            log(&format!("{}: request {} refused: {e}", r.controller, r.id));
            let record = Record {
                controller: r.controller.clone(),
                decision: e,
                error: true,
                at: unix_now(),
                request: Some(r.id.clone()),
                outcome: None,
            };
            if let Err(e) = records::write(&cx.docker, stack, &record).await {
                log(&format!("the refusal was not recorded: {e}"));
            }
            let _ = requests::remove(&cx.docker, &p.name).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn backoff_doubles_from_5s_and_stops_at_5min() {
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn every_controller_runs_first_in_order_then_by_its_own_next() {
        let mut sch = Schedule::new(3);
        assert_eq!(sch.next(), Some((0, s(0))));
        sch.done(0, s(0), Ok(s(60)));
        assert_eq!(sch.next(), Some((1, s(0))));
        sch.done(1, s(1), Ok(s(10)));
        assert_eq!(sch.next(), Some((2, s(0))));
        sch.done(2, s(1), Ok(s(30)));
        // Now 1 (due at 11), then 2 (31), then 0 (60).
        assert_eq!(sch.next(), Some((1, s(11))));
        sch.done(1, s(11), Ok(s(10)));
        assert_eq!(sch.next(), Some((1, s(21))));
        sch.done(1, s(21), Ok(s(100)));
        assert_eq!(sch.next(), Some((2, s(31))));
        sch.done(2, s(31), Ok(s(100)));
        assert_eq!(sch.next(), Some((0, s(60))));
    }

    #[test]
    fn a_failing_controller_backs_off_and_a_success_resets_it() {
        let mut sch = Schedule::new(2);
        sch.done(0, s(0), Err(()));
        assert_eq!(sch.failures(0), 1);
        assert_eq!(sch.next(), Some((1, s(0))));
        sch.done(1, s(0), Ok(s(1000)));
        assert_eq!(sch.next(), Some((0, s(5))));
        assert_eq!(sch.done(0, s(5), Err(())), s(10));
        assert_eq!(sch.done(0, s(15), Err(())), s(20));
        assert_eq!(sch.next(), Some((0, s(35))));
        // A success: its own next, and the next failure starts over at 5 s.
        assert_eq!(sch.done(0, s(35), Ok(s(60))), s(60));
        assert_eq!(sch.failures(0), 0);
        assert_eq!(sch.done(0, s(95), Err(())), s(5));
        // The other controller was never held up by the failing one.
        assert_eq!(sch.next(), Some((0, s(100))));
    }

    #[test]
    fn between_rounds_the_loop_looks_for_requests_every_poll() {
        let mut sch = Schedule::new(2);
        // Both due at 0: rounds first (a look due at the same time waits for them).
        assert_eq!(sch.wake(s(0)), (s(0), Wake::Poll));
        assert_eq!(sch.wake(s(1)), (s(0), Wake::Round(0)));
        sch.done(0, s(0), Ok(s(3600)));
        sch.done(1, s(0), Ok(s(10)));
        // Controller 1 at 10 s; looks at 3, 6, 9 before it, then its round.
        assert_eq!(sch.wake(s(3)), (s(3), Wake::Poll));
        assert_eq!(sch.wake(s(9)), (s(9), Wake::Poll));
        assert_eq!(sch.wake(s(12)), (s(10), Wake::Round(1)));
        sch.done(1, s(10), Ok(s(3600)));
        // A request to controller 0 found at 12: its round is next, at once.
        sch.asked(0, s(12));
        assert_eq!(sch.wake(s(15)), (s(12), Wake::Round(0)));
        // Asking never delays a round already due sooner.
        sch.asked(1, s(5000));
        assert_eq!(sch.next(), Some((0, s(12))));
        sch.done(0, s(13), Ok(s(60)));
        assert_eq!(sch.next(), Some((0, s(73))));
    }

    #[test]
    fn without_controllers_the_loop_only_looks_for_requests() {
        assert_eq!(Schedule::new(0).wake(s(3)), (s(3), Wake::Poll));
    }

    #[test]
    fn without_controllers_nothing_is_due() {
        assert_eq!(Schedule::new(0).next(), None);
    }

    #[test]
    fn a_round_logs_one_line() {
        let ok = Ok(Round {
            decision: "web stays at 2".into(),
            next: s(30),
            outcome: None,
        });
        assert_eq!(
            log_line("autoscale", &ok, s(30)),
            "autoscale: web stays at 2 (next in 30s)"
        );
        let err = Err("engine unreachable".to_string());
        assert_eq!(
            log_line("jobs", &err, s(20)),
            "jobs: error: engine unreachable (trying again in 20s)"
        );
    }
}

//! The deploy lock: every command that changes a stack holds it while it works, so two
//! operators (or CI and a person) never change one stack at once. It lives in the swarm
//! ([`crate::engine::lock`]), not on a laptop.
//!
//! - A command that finds the lock held fails with exit 6 ("locked by USER@HOST since TIME
//!   (COMMAND: REASON)") before it changes anything, or with `--lock-wait DUR` looks again
//!   every [`POLL`] until it is free (then proceeds) or the wait is over (exit 6).
//! - A lock is stale [`TTL`] after it was taken (a command whose `--timeout` is longer: its
//!   timeout plus [`MARGIN`]; `twip lock acquire --for DUR`), and the next command takes it
//!   over with a warning: a twip that was killed does not block a stack for ever.
//! - [`with_lock`] releases it on every way out: success, error and Ctrl-C (exit 130). A
//!   release removes the lock only while it is still the one this command took.
//!
//! The operation (who, which command, whether hooks run) is known to everything the command
//! runs through [`current`]: the release records and the hooks read it from there.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::engine::lock::{self, Found, Holder};
use crate::engine::SwarmApi;
use crate::exit;
use crate::ui::{clean, Ui};

/// How long a lock is good for, unless the command says longer: longer than any default
/// `--timeout` of a command that changes a stack (`update`'s 10m, `rollback`'s 10m).
pub const TTL: Duration = Duration::from_secs(30 * 60);
/// Added to a command's `--timeout` when that is longer than [`TTL`] minus this.
pub const MARGIN: Duration = Duration::from_secs(10 * 60);
/// How often `--lock-wait` looks again.
pub const POLL: Duration = Duration::from_secs(2);

/// Who runs which command, and how: what the lock, the release record and the hooks say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The command as a person would name it: `up`, `scale`, `rollback --to 3`.
    pub command: String,
    pub user: String,
    pub host: String,
    pub reason: String,
    /// Whether `hooks/` run (`--no-hooks` says no).
    pub hooks: bool,
}

impl Operation {
    /// COMMAND run by this machine's user (`TWIP_USER`, else `USER`, else `LOGNAME`) on this
    /// host, hooks on.
    pub fn here(command: &str) -> Operation {
        Operation {
            command: command.to_string(),
            user: user(),
            host: host(),
            reason: String::new(),
            hooks: true,
        }
    }

    pub fn reason(mut self, reason: Option<&str>) -> Self {
        self.reason = reason.unwrap_or_default().to_string();
        self
    }

    pub fn hooks(mut self, on: bool) -> Self {
        self.hooks = on;
        self
    }
}

tokio::task_local! {
    static OPERATION: Operation;
}

/// The operation the current command runs as (set by [`with_lock`] or [`scoped`]).
pub fn current() -> Option<Operation> {
    OPERATION.try_with(Clone::clone).ok()
}

/// Runs F as OP (what [`current`] returns inside it), without a lock.
pub async fn scoped<F: Future>(op: Operation, f: F) -> F::Output {
    OPERATION.scope(op, f).await
}

fn user() -> String {
    ["TWIP_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

fn host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(h) if rc == 0 && !h.is_empty() => h.to_string(),
        _ => "unknown".into(),
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// How long a lock taken by a command that waits up to TIMEOUT is good for.
pub fn ttl_for(timeout: Duration) -> Duration {
    TTL.max(timeout + MARGIN)
}

/// [`with_lock`] on the stack of T, through T's engine, for a command whose waits last up to
/// TIMEOUT (the lock's life is [`ttl_for`] it): what every command that changes a stack runs in.
pub async fn hold<F>(
    t: &crate::context::Target,
    op: Operation,
    wait: Option<Duration>,
    timeout: Duration,
    ui: &Ui,
    f: F,
) -> anyhow::Result<i32>
where
    F: Future<Output = anyhow::Result<i32>>,
{
    with_lock(&t.docker, t.env.stack(), op, wait, ttl_for(timeout), ui, f).await
}

/// "locked by alice@laptop since 2026-01-01T10:00:00Z (up: hotfix)"
pub fn describe(h: &Holder) -> String {
    let since = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(h.since));
    let what = if h.reason.is_empty() {
        h.command.clone()
    } else {
        format!("{}: {}", h.command, h.reason)
    };
    clean(&format!(
        "locked by {}@{} since {since} ({what})",
        h.user, h.host
    ))
}

/// Whether H was taken by this very process (its token starts with this host and process id):
/// a twip runs one command, so such a lock was left by an earlier attempt of that command whose
/// manager went away before it could release it.
pub fn taken_by_this_process(h: &Holder, op: &Operation) -> bool {
    h.token
        .starts_with(&format!("{}-{}-", op.host, std::process::id()))
}

/// Whether the lock is past its time on API's clock.
pub fn is_stale(api: &dyn SwarmApi, h: &Holder) -> bool {
    secs(api.now()) >= h.since.saturating_add(h.ttl)
}

/// A lock this command holds.
#[derive(Debug, Clone)]
pub struct Held {
    pub stack: String,
    pub holder: Holder,
}

/// Takes the lock of STACK for OP, good for TTL. Held by someone else: exit 6 at once, or
/// with WAIT, once WAIT has passed without it coming free. A stale lock is taken over.
pub async fn acquire(
    api: &dyn SwarmApi,
    stack: &str,
    op: &Operation,
    wait: Option<Duration>,
    ttl: Duration,
    ui: &Ui,
) -> anyhow::Result<Held> {
    let started = api.now();
    let mut said = false;
    let mut vanished = 0;
    loop {
        let now = api.now();
        let holder = Holder {
            user: op.user.clone(),
            host: op.host.clone(),
            command: op.command.clone(),
            reason: op.reason.clone(),
            since: secs(now),
            ttl: ttl.as_secs(),
            token: format!(
                "{}-{}-{}",
                op.host,
                std::process::id(),
                now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
            ),
        };
        if lock::create(api, stack, &holder).await? {
            ui.debug(&format!("took the deploy lock of {stack}"));
            return Ok(Held {
                stack: stack.to_string(),
                holder,
            });
        }
        let Some(found) = lock::read(api, stack).await? else {
            // Released between the two calls: try again; but a config of that name that is
            // not twip's lock would refuse every create.
            vanished += 1;
            if vanished > 3 {
                return Err(anyhow::anyhow!(
                    "{stack}: a config named {} exists but is not twip's lock; remove it (docker config rm {})",
                    lock::name(stack),
                    lock::name(stack)
                ));
            }
            continue;
        };
        if taken_by_this_process(&found.holder, op) {
            // This twip took it through a manager that went away before it could release it
            // (`context::with_retry` runs the command again through another manager).
            ui.debug(&format!(
                "{stack}: taking back the deploy lock this twip took through a manager that went away"
            ));
            lock::remove(api, stack, &found.id).await?;
            continue;
        }
        if is_stale(api, &found.holder) {
            ui.warn(&format!(
                "{stack}: taking over a stale lock ({}, older than {})",
                describe(&found.holder),
                humantime::format_duration(Duration::from_secs(found.holder.ttl))
            ));
            lock::remove(api, stack, &found.id).await?;
            continue;
        }
        let waited = now.duration_since(started).unwrap_or_default();
        match wait {
            Some(w) if waited < w => {
                if !said {
                    ui.info(&format!(
                        "{stack}: {}; waiting up to {}",
                        describe(&found.holder),
                        humantime::format_duration(w)
                    ));
                    said = true;
                }
                api.sleep(POLL.min(w - waited)).await;
            }
            Some(w) => {
                return Err(exit::coded(
                    exit::LOCKED,
                    format!(
                        "{stack}: still {} after waiting {}; nothing was changed",
                        describe(&found.holder),
                        humantime::format_duration(w)
                    ),
                ))
            }
            None => {
                return Err(exit::coded(
                    exit::LOCKED,
                    format!(
                        "{stack}: {}; nothing was changed (--lock-wait DUR waits for it; `twip lock status` shows it)",
                        describe(&found.holder)
                    ),
                ))
            }
        }
    }
}

/// Takes the lock of STACK for OP if it is free (or stale), without waiting and without a
/// word on the terminal: what the agent's controllers do, which skip a round rather than wait
/// for an operator. `Ok(Err(holder))`: someone holds it.
pub async fn try_acquire(
    api: &dyn SwarmApi,
    stack: &str,
    op: &Operation,
    ttl: Duration,
) -> anyhow::Result<Result<Held, Holder>> {
    let quiet = Ui {
        quiet: true,
        ..Ui::plain()
    };
    match acquire(api, stack, op, None, ttl, &quiet).await {
        Ok(held) => Ok(Ok(held)),
        Err(e) if exit::code_for(&e) == exit::LOCKED => match lock::read(api, stack).await? {
            Some(found) => Ok(Err(found.holder)),
            None => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Releases a lock this command holds, if it is still the one it took. `Ok(false)` when it
/// was released or taken over meanwhile.
pub async fn release(api: &dyn SwarmApi, held: &Held) -> anyhow::Result<bool> {
    match lock::read(api, &held.stack).await? {
        Some(Found { id, holder }) if holder.token == held.holder.token => {
            Ok(lock::remove(api, &held.stack, &id).await?)
        }
        _ => Ok(false),
    }
}

/// Whoever holds the lock of STACK, and whether that lock is stale.
pub async fn status(api: &dyn SwarmApi, stack: &str) -> anyhow::Result<Option<(Holder, bool)>> {
    Ok(lock::read(api, stack).await?.map(|f| {
        let stale = is_stale(api, &f.holder);
        (f.holder, stale)
    }))
}

/// Releases the lock of STACK by hand: the operator's own lock (same user and host), any
/// stale lock, or with FORCE anyone's. Returns the holder it released (`None`: not locked).
pub async fn release_by_hand(
    api: &dyn SwarmApi,
    stack: &str,
    op: &Operation,
    force: bool,
) -> anyhow::Result<Option<Holder>> {
    let Some(found) = lock::read(api, stack).await? else {
        return Ok(None);
    };
    let mine = found.holder.user == op.user && found.holder.host == op.host;
    if !(mine || force || is_stale(api, &found.holder)) {
        return Err(exit::coded(
            exit::LOCKED,
            format!(
                "{stack}: {}, not by you; `twip lock release --force` releases it anyway",
                describe(&found.holder)
            ),
        ));
    }
    lock::remove(api, stack, &found.id).await?;
    Ok(Some(found.holder))
}

/// Runs F holding the lock of STACK as OP (see [`acquire`]); OP is [`current`] inside F.
/// The lock is released however F ends: its result, its error, or Ctrl-C (then exit 130,
/// F's future dropped, its subprocesses killed).
pub async fn with_lock<F>(
    api: &dyn SwarmApi,
    stack: &str,
    op: Operation,
    wait: Option<Duration>,
    ttl: Duration,
    ui: &Ui,
    f: F,
) -> anyhow::Result<i32>
where
    F: Future<Output = anyhow::Result<i32>>,
{
    let held = acquire(api, stack, &op, wait, ttl, ui).await?;
    let result = tokio::select! {
        r = OPERATION.scope(op, f) => r,
        _ = tokio::signal::ctrl_c() => Err(exit::coded(
            exit::INTERRUPTED,
            format!("{stack}: interrupted; what was done so far stays (`twip status` shows it)"),
        )),
    };
    match release(api, &held).await {
        Ok(true) => ui.debug(&format!("released the deploy lock of {stack}")),
        Ok(false) => ui.warn(&format!(
            "{stack}: the deploy lock was released or taken over while this command ran"
        )),
        Err(e) => ui.warn(&format!(
            "{stack}: could not release the deploy lock ({e:#}); `twip lock release --force` does"
        )),
    }
    result
}

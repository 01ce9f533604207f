//! `twip lock status|acquire|release ENV`: the stack's deploy lock by hand (e.g. during an
//! incident). See [`crate::lifecycle::lock`].

use crate::cli::{GlobalArgs, LockCommand};
use crate::exit;
use crate::lifecycle::lock::{self, Operation};
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, cmd: &LockCommand, ui: &Ui) -> anyhow::Result<i32> {
    match cmd {
        LockCommand::Status(a) => {
            let t = crate::context::open_on(g, &a.env, a.lab.as_deref()).await?;
            let stack = t.env.stack();
            let held = lock::status(&t.docker, stack).await?;
            if a.json {
                let v = match &held {
                    Some((h, stale)) => serde_json::json!({
                        "env": t.env.name, "stack": stack, "locked": true, "stale": stale,
                        "user": h.user, "host": h.host, "command": h.command, "reason": h.reason,
                        "since": h.since, "expires": h.since + h.ttl,
                    }),
                    None => serde_json::json!({"env": t.env.name, "stack": stack, "locked": false}),
                };
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                match &held {
                    Some((h, stale)) => println!(
                        "{}: {}{}",
                        t.env.name,
                        lock::describe(h),
                        if *stale {
                            " (stale: the next command takes it over)"
                        } else {
                            ""
                        }
                    ),
                    None => println!("{}: not locked", t.env.name),
                }
            }
            Ok(exit::SUCCESS)
        }
        LockCommand::Acquire(a) => {
            let t = crate::context::open_on(g, &a.env, a.lab.as_deref()).await?;
            let op = Operation::here("lock acquire").reason(Some(&a.reason));
            let held = lock::acquire(&t.docker, t.env.stack(), &op, a.lock_wait, a.ttl, ui).await?;
            ui.ok(&format!(
                "{}: {} until {} (`twip lock release {}` releases it)",
                t.env.name,
                lock::describe(&held.holder),
                humantime::format_rfc3339_seconds(
                    std::time::UNIX_EPOCH
                        + std::time::Duration::from_secs(held.holder.since + held.holder.ttl)
                ),
                t.env.name
            ));
            Ok(exit::SUCCESS)
        }
        LockCommand::Release(a) => {
            let t = crate::context::open_on(g, &a.env, a.lab.as_deref()).await?;
            let op = Operation::here("lock release");
            match lock::release_by_hand(&t.docker, t.env.stack(), &op, a.force).await? {
                Some(h) => ui.ok(&format!(
                    "{}: released ({})",
                    t.env.name,
                    lock::describe(&h)
                )),
                None => ui.ok(&format!("{}: not locked", t.env.name)),
            }
            Ok(exit::SUCCESS)
        }
    }
}

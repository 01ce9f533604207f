//! `twip logs ENV SVC [-f] [--tail N]`: the service's logs, each line prefixed with its task
//! (`web.2`), from every task's log stream merged.

use futures_util::stream::{select_all, StreamExt};

use crate::cli::{GlobalArgs, LogsArgs};
use crate::engine::model::TaskState;
use crate::engine::observe;
use crate::exit;
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &LogsArgs, _ui: &Ui) -> anyhow::Result<i32> {
    let t = crate::context::open_on(g, &args.env, args.lab.as_deref()).await?;
    let known = t.env.manifest.services.contains_key(&args.service)
        || (args.service == crate::manifest::validate::PROXY_SERVICE
            && t.env.manifest.proxy.is_some())
        || (args.service == crate::manifest::validate::MONITORING_SERVICE
            && t.env.manifest.monitoring.is_some())
        || (args.service == crate::manifest::validate::AGENT_SERVICE
            && crate::agent::for_stack(&t.env, &t.project.dir)?.is_some());
    if !known {
        let names: Vec<&str> = t.env.manifest.services.keys().map(String::as_str).collect();
        return Err(exit::invalid(format!(
            "{}: no service `{}`; services: {}",
            t.env.name,
            args.service,
            names.join(", ")
        )));
    }
    let full = format!("{}_{}", t.env.stack(), args.service);
    let mut tasks = observe::tasks(&t.docker, &full).await?;
    tasks.retain(|x| x.desired_state == Some(TaskState::RUNNING) || !args.follow);
    tasks.sort_by_key(|x| (x.slot, x.created_at.clone()));
    if tasks.is_empty() {
        return Err(anyhow::anyhow!(
            "{full} has no tasks (is {} up?)",
            t.env.name
        ));
    }
    let width = tasks
        .iter()
        .map(|x| format!("{}.{}", args.service, x.slot.unwrap_or(0)).len())
        .max()
        .unwrap_or(0);
    let mut streams = Vec::new();
    for task in &tasks {
        let id = task.id.clone().unwrap_or_default();
        let label = match task.slot {
            Some(slot) => format!("{}.{slot}", args.service),
            None => format!(
                "{}.{}",
                args.service,
                id.chars().take(6).collect::<String>()
            ),
        };
        // The prefix is twip's: made safe for a terminal. The lines are the container's own
        // and are printed as they are (like `docker logs`), colours included.
        let label = crate::ui::clean(&label);
        let stream = observe::task_logs(&t.docker, &id, args.follow, args.tail)
            .map(move |r| (label.clone(), r));
        streams.push(Box::pin(stream));
    }
    let mut merged = select_all(streams);
    loop {
        tokio::select! {
            item = merged.next() => match item {
                Some((label, Ok(out))) => {
                    for line in out.lines() {
                        println!("{label:<width$} | {line}");
                    }
                }
                Some((label, Err(e))) => {
                    eprintln!("{label}: {}", crate::ui::clean(&e.to_string()))
                }
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(exit::SUCCESS)
}

//! `twip exec ENV SVC [--task N | --node NAME | --all] [-i] [-t] [-u USER] [-w DIR] [-e K=V]...
//! -- CMD...`: a command in a running task of the service, through the engine of the node that
//! holds it; twip's exit code is the command's.

use std::collections::HashMap;

use crate::cli::{ExecArgs, GlobalArgs};
use crate::engine::attach::ExecSpec;
use crate::exit;
use crate::session::{self, Place};
use crate::tasks::{self, Pick};
use crate::ui::{term, Ui};

pub async fn run(g: &GlobalArgs, args: &ExecArgs, ui: &Ui) -> anyhow::Result<i32> {
    // What the command line says is checked before any connection.
    let spec = ExecSpec {
        cmd: args.command.clone(),
        user: args.checked_user()?,
        workdir: args.checked_workdir()?,
        env: args.env_entries()?,
        stdin: args.interactive,
        tty: args.tty,
        size: None,
    };
    if args.tty && args.interactive && !term::is_terminal(term::STDIN) {
        return Err(exit::invalid(
            "-it needs a terminal on stdin, and stdin is not one: drop -t to pipe stdin to the command",
        ));
    }
    let pick = match (&args.task, &args.node, args.all) {
        (Some(n), _, _) => Pick::Slot(*n),
        (_, Some(name), _) => Pick::Node(name.clone()),
        (_, _, true) => Pick::All,
        _ => Pick::First,
    };
    let t = crate::context::open_on(g, &args.env, args.lab.as_deref()).await?;
    tasks::check_service(&t, &args.service)?;
    let (list, nodes) = tokio::try_join!(tasks::of_service(&t, &args.service), tasks::nodes(&t))?;
    let chosen = tasks::choose(&t.env.name, &args.service, &list, &nodes, &pick)?;

    // One connection per node (several tasks may share one), kept with its SSH tunnel.
    let mut engines = HashMap::new();
    let mut tunnels = Vec::new();
    let mut places = Vec::new();
    for c in &chosen {
        let label = c.label();
        if !engines.contains_key(&c.node_id) {
            let node = nodes.iter().find(|n| n.id == c.node_id);
            let (docker, via, tunnel) = tasks::connect(&t, node, &label).await?;
            tunnels.extend(tunnel);
            engines.insert(c.node_id.clone(), (docker, via));
        }
        let (docker, via) = &engines[&c.node_id];
        let short: String = c.container.chars().take(12).collect();
        ui.debug(&format!(
            "{label}: container {short} on node {} through {via}",
            c.node
        ));
        places.push(Place {
            label,
            docker: docker.clone(),
            container: c.container.clone(),
        });
    }
    let code = if args.all {
        session::each(&places, &spec, ui).await
    } else {
        session::attached(&places[0], spec, ui).await?
    };
    drop(tunnels);
    Ok(code)
}

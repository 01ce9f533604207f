//! `twip jobs ENV [--json]` (each job, its schedule, next run and last runs) and
//! `twip jobs run ENV NAME` (a run now, through the same claim and run path as the agent).

use crate::agent::jobs::JobsConfig;
use crate::agent::jobs_cli;
use crate::cli::{GlobalArgs, JobsArgs, JobsCommand};
use crate::exit;
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &JobsArgs, ui: &Ui) -> anyhow::Result<i32> {
    if let Some(JobsCommand::Run(a)) = &args.command {
        let t = crate::context::open_on(g, &a.env, a.lab.as_deref()).await?;
        let Some(job) = t.env.manifest.jobs.get(&a.name) else {
            let known: Vec<&str> = t.env.manifest.jobs.keys().map(String::as_str).collect();
            let hint = crate::suggest::hint(&a.name, &known);
            return Err(exit::invalid(format!(
                "{} has no job `{}`{hint}",
                t.env.name, a.name
            )));
        };
        let timeout = a.timeout.unwrap_or_else(|| job.timeout());
        let stack = t.env.stack().to_string();
        if crate::engine::jobs::template_created(&t.docker, &stack, &a.name)
            .await?
            .is_none()
        {
            anyhow::bail!(
                "the job `{}` is not deployed yet; run `twip up {}` first",
                a.name,
                t.env.name
            );
        }
        ui.info(&format!("running job {} now", a.name));
        let code = jobs_cli::run_now(&t.docker, &stack, &a.name, timeout, &mut |l| {
            println!("{l}")
        })
        .await?;
        ui.info(&format!(
            "job {} exited with {}",
            a.name,
            code.map_or("no exit code".into(), |c| c.to_string())
        ));
        return Ok(code
            .and_then(|c| i32::try_from(c).ok())
            .filter(|c| (0..=255).contains(c))
            .unwrap_or(exit::FAILURE));
    }
    let Some(env) = &args.env else {
        return Err(exit::invalid(
            "name an environment: `twip jobs ENV` or `twip jobs run ENV NAME`",
        ));
    };
    let t = crate::context::open_on(g, env, args.lab.as_deref()).await?;
    let config = JobsConfig::for_environment(&t.env, &t.project.dir)?;
    let views = jobs_cli::list(&t.docker, t.env.stack(), &config.jobs).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(exit::SUCCESS);
    }
    if views.is_empty() {
        println!("{}: no jobs", t.env.name);
    }
    for v in &views {
        println!(
            "{}  schedule {:?} (UTC)  concurrency {}  next {}{}",
            v.name,
            v.schedule,
            v.concurrency,
            v.next_run.as_deref().unwrap_or("-"),
            if v.deployed { "" } else { "  (not deployed)" }
        );
        for r in &v.last_runs {
            println!(
                "  {}  {:<10} exit {:<4} {:>8.1}s  {}",
                r.started,
                r.status,
                r.exit_code.map_or("-".into(), |c| c.to_string()),
                r.duration_ms as f64 / 1000.0,
                r.slot
            );
        }
    }
    Ok(exit::SUCCESS)
}

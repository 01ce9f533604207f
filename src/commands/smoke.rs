//! `twip test ENV [PATH...]`: the twip.sh smoke test. One request per path through the
//! environment's entrypoint (the proxy); prints the status line, the server, the upstream
//! that answered and the time. Exit 1 when any request fails or answers >= 400.

use std::time::{Duration, Instant};

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};

use crate::cli::{GlobalArgs, TestArgs};
use crate::exit;
use crate::http::get;
use crate::project::Project;
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &TestArgs, ui: &Ui) -> anyhow::Result<i32> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(&args.env)?;
    let lab = args.lab.as_deref().map(crate::lab::Lab::load).transpose()?;
    let base = crate::render::context::vip::vip_url(&env)
        .or_else(|| crate::context::entrypoint_on(&env, lab.as_ref()))
        .ok_or_else(|| {
            exit::invalid(format!(
                "{} has no proxy: there is no entrypoint to test",
                env.name
            ))
        })?;
    let base = base.trim_end_matches('/').to_string();
    let paths: Vec<String> = if args.paths.is_empty() {
        let mut p: Vec<String> = env
            .manifest
            .proxy
            .as_ref()
            .map(|p| {
                p.routes
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        let (key, p) = match (&r.probe, &r.path) {
                            (Some(p), _) => ("probe", p.clone()),
                            (None, Some(p)) => ("path", p.clone()),
                            (None, None) => ("path", "/".into()),
                        };
                        crate::render::escape::request_target(&p)
                            .map_err(|e| exit::invalid(format!("proxy.routes[{i}].{key}: {e}")))?;
                        Ok(p)
                    })
                    .collect::<anyhow::Result<Vec<_>>>()
            })
            .transpose()?
            .unwrap_or_default();
        p.dedup();
        p
    } else {
        args.paths
            .iter()
            .map(|p| {
                let p = if p.starts_with('/') {
                    p.clone()
                } else {
                    format!("/{p}")
                };
                crate::render::escape::request_target(&p)
                    .map_err(|e| exit::invalid(format!("PATH argument: {e}")))?;
                Ok(p)
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    table.set_header(vec![
        "PATH",
        "STATUS",
        "SERVER",
        "UPSTREAM",
        "SERVED BY",
        "TIME",
    ]);
    let mut failed = 0;
    for p in &paths {
        let url = format!("{base}{p}");
        let t0 = Instant::now();
        match get(&url, Duration::from_secs(10)).await {
            Ok(r) => {
                if r.status >= 400 {
                    failed += 1;
                }
                table.add_row(vec![
                    p.clone(),
                    r.status_line
                        .split_once(' ')
                        .map(|x| x.1)
                        .unwrap_or_default()
                        .to_string(),
                    r.header("server").unwrap_or("-").to_string(),
                    r.header("x-twip-backend").unwrap_or("-").to_string(),
                    r.header("x-served-by").unwrap_or("-").to_string(),
                    format!("{:.1} ms", t0.elapsed().as_secs_f64() * 1000.0),
                ]);
            }
            Err(e) => {
                failed += 1;
                table.add_row(vec![
                    p.clone(),
                    format!("error: {e}"),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    format!("{:.1} ms", t0.elapsed().as_secs_f64() * 1000.0),
                ]);
            }
        }
    }
    println!("{table}");
    if failed > 0 {
        ui.error(&format!(
            "{failed} of {} requests to {base} failed",
            paths.len()
        ));
        Ok(exit::FAILURE)
    } else {
        ui.ok(&format!(
            "{} answers on {base} ({} paths)",
            env.name,
            paths.len()
        ));
        Ok(exit::SUCCESS)
    }
}

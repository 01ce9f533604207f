//! `twip certs ENV [--json]`: the proxy's certificates (names, issuer, validity, days left,
//! where each comes from and how it is renewed): the files of the project, and with
//! `proxy.tls.acme` the certificate the proxy serves (read from the engine).
//! `twip certs renew ENV [--force]`: asks the in-cluster agent to renew now and waits for its
//! answer, or (no agent deployed) runs one round of the certificates controller from here.

use serde::Serialize;

use crate::agent::certs::CertsConfig;
use crate::agent::certs_cli::{self, AcmeView};
use crate::agent::AgentConfig;
use crate::cli::{CertsArgs, CertsCommand, CertsRenewArgs, GlobalArgs};
use crate::exit;
use crate::project::Project;
use crate::tls;
use crate::ui::Ui;

/// How a certificate from files is renewed.
const FILE_RENEWAL: &str = "file: renew by replacing the files and running `twip up`";

#[derive(Serialize)]
struct Source {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bundle: Option<String>,
}

#[derive(Serialize)]
struct Row {
    index: usize,
    names: Vec<String>,
    subject: String,
    issuer: String,
    not_before: String,
    not_after: String,
    not_after_unix: i64,
    days_left: i64,
    chain: usize,
    source: Source,
    renewal: &'static str,
}

#[derive(Serialize)]
struct Report {
    environment: String,
    certificates: Vec<Row>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acme: Option<AcmeView>,
}

pub async fn run(g: &GlobalArgs, args: &CertsArgs, ui: &Ui) -> anyhow::Result<i32> {
    if let Some(CertsCommand::Renew(a)) = &args.command {
        return renew(g, a, ui).await;
    }
    let Some(name) = &args.env else {
        return Err(exit::invalid(
            "name an environment: `twip certs ENV` or `twip certs renew ENV`",
        ));
    };
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(name)?;
    for w in &env.warnings {
        ui.warn(w);
    }
    let now = tls::now();
    let files = env
        .manifest
        .proxy
        .as_ref()
        .and_then(|p| p.tls.as_ref())
        .map(|t| t.certificates.clone())
        .unwrap_or_default();
    let mut rows = Vec::new();
    for (index, f) in files.iter().enumerate() {
        // Validation read these files a moment ago: a failure now is a file changed since.
        let cert_file = f
            .bundle
            .as_ref()
            .or(f.cert.as_ref())
            .cloned()
            .unwrap_or_default();
        let bytes = std::fs::read(project.dir.join(&cert_file))
            .map_err(|e| anyhow::anyhow!("reading {cert_file}: {e}"))?;
        let info = tls::certificates(&bytes)
            .and_then(|chain| tls::inspect(&chain))
            .map_err(|e| exit::invalid(format!("{cert_file}: {e}")))?;
        rows.push(Row {
            index,
            days_left: info.days_left(now),
            not_before: tls::date(info.not_before),
            not_after: tls::date(info.not_after),
            not_after_unix: info.not_after,
            names: info.names,
            subject: info.subject,
            issuer: info.issuer,
            chain: info.chain,
            source: Source {
                kind: "file",
                cert: f.cert.clone(),
                key: f.key.clone(),
                bundle: f.bundle.clone(),
            },
            renewal: FILE_RENEWAL,
        });
    }
    let cfg = CertsConfig::for_environment(&env, &project.dir)?;
    let acme = if cfg.is_empty() {
        None
    } else {
        let t = crate::context::open_on(g, name, None).await?;
        certs_cli::view(&t.docker, env.stack(), &cfg).await?
    };
    if args.json {
        let report = Report {
            environment: env.name.clone(),
            certificates: rows,
            acme,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(exit::SUCCESS);
    }
    for l in acme.iter().flat_map(AcmeView::lines) {
        println!("{}", ui_clean(&l));
    }
    if rows.is_empty() && acme.is_none() {
        ui.info(&format!(
            "environment `{}` has no certificates (no proxy.tls)",
            env.name
        ));
        return Ok(exit::SUCCESS);
    }
    for r in &rows {
        let from = match (&r.source.bundle, &r.source.cert, &r.source.key) {
            (Some(b), _, _) => format!("file {b}"),
            (None, Some(c), Some(k)) => format!("files {c} + {k}"),
            _ => "file".to_string(),
        };
        let left = if r.days_left < 0 {
            "expired".to_string()
        } else {
            format!("{} days left", r.days_left)
        };
        println!("[{}] {}", r.index, ui_clean(&r.names.join(", ")));
        println!("    subject    {}", ui_clean(&r.subject));
        println!("    issuer     {}", ui_clean(&r.issuer));
        println!(
            "    valid      {} .. {} ({left})",
            r.not_before, r.not_after
        );
        println!("    source     {}", ui_clean(&from));
        println!("    renewal    {}", r.renewal);
    }
    Ok(exit::SUCCESS)
}

fn ui_clean(s: &str) -> String {
    crate::ui::clean(s)
}

/// `twip certs renew ENV`: the agent's round or one from here, under the stack's deploy lock.
async fn renew(g: &GlobalArgs, a: &CertsRenewArgs, ui: &Ui) -> anyhow::Result<i32> {
    let project = Project::discover(g.project_dir.as_deref())?;
    let env = project.load(&a.env)?;
    if CertsConfig::for_environment(&env, &project.dir)?.is_empty() {
        return Err(exit::invalid(format!(
            "environment `{}` has no ACME certificate (no proxy.tls.acme); \
             certificates from files are renewed by replacing the files and running `twip up`",
            env.name
        )));
    }
    let t = crate::context::open_on(g, &a.env, a.lab.as_deref()).await?;
    let mut config = AgentConfig::for_environment(&t.env, &t.project.dir)?;
    config.certs.listen.clone_from(&a.listen);
    let op = crate::lifecycle::lock::Operation::here("certs renew");
    let work = async {
        // On a terminal only: how long the agent's answer has been awaited.
        let live = ui.interactive && !ui.quiet;
        let waiting = |d: std::time::Duration| {
            live.then(|| eprint!("\rwaiting for the agent's answer ({}s) ", d.as_secs()));
        };
        let r = certs_cli::renew(t.docker.clone(), config, a.force, a.timeout, &waiting).await;
        live.then(|| eprint!("\r\x1b[K"));
        let r = r?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&r)?);
        } else {
            r.lines().iter().for_each(|l| println!("{}", ui_clean(l)));
        }
        Ok(r.exit_code())
    };
    crate::lifecycle::lock::hold(&t, op, None, a.timeout, ui, work).await
}

//! Arguments about TLS: `twip bench`'s certificate checks and `twip certs`.

use std::path::PathBuf;

use clap::Args;

/// How `twip bench` checks an `https://` target's certificate.
#[derive(Debug, Clone, Default, Args)]
pub struct BenchTlsArgs {
    /// https: trust only the CA certificates of this PEM file (instead of the system's roots)
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub cacert: Option<PathBuf>,

    /// https: do not check the server's certificate (the handshake still happens)
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CertsArgs {
    #[command(subcommand)]
    pub command: Option<CertsCommand>,

    /// The environment whose certificates to list
    #[arg(value_name = "ENV")]
    pub env: Option<String>,

    /// Print the certificates as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum CertsCommand {
    /// Renew the ACME certificate now: the in-cluster agent is asked, or (no agent) one round
    /// of the certificates controller runs from here
    #[command(
        after_help = "Holds the stack's deploy lock (so it does not race `twip up`). Without --force it renews\nonly when due (two thirds into the certificate's lifetime) and otherwise says until when\nit is not due, asking nobody.\n\nWith the in-cluster agent deployed (it answers the HTTP-01 challenges), the request is\nwritten to the swarm (a config of the stack; one per controller, never a secret) and the\nagent runs its round at once (it looks every few seconds); this command waits up to\n--timeout for the agent's record of that round and prints it. No answer in time: exit 1,\nthe request removed. Without an agent the round runs in this process; the challenge is\nsent by the proxy to tasks.STACK_agent:8402, so it reaches this process only where that\nservice forwards to it.\n\nExamples:\n  twip certs renew production             renew if due\n  twip certs renew production --force     renew now\n  twip certs renew production --json      the outcome as data\n\nExit code: 0 renewed (or not due), 1 the order failed (the old certificate keeps\nserving) or the agent did not answer, 2 invalid input (no proxy.tls.acme in this\nenvironment), 6 the stack is locked."
    )]
    Renew(CertsRenewArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CertsRenewArgs {
    /// The environment
    #[arg(value_name = "ENV")]
    pub env: String,

    /// Renew whatever is served, due or not
    #[arg(long)]
    pub force: bool,

    /// How long to wait for the agent's answer (without an agent: for the directory's
    /// validation)
    #[arg(long, value_name = "DUR", value_parser = super::parse::duration, default_value = "3m")]
    pub timeout: std::time::Duration,

    /// Print the outcome as JSON on stdout
    #[arg(long)]
    pub json: bool,

    /// Use the lab of this name instead of the manifest's engine
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,

    /// Where this process's challenge listener binds (tests; default 0.0.0.0:8402)
    #[arg(long, value_name = "ADDR", hide = true)]
    pub listen: Option<String>,
}

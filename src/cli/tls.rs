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
pub struct CertsArgs {
    /// The environment whose certificates to list
    pub env: String,

    /// Print the certificates as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

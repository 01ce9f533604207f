//! `twip bootstrap ENV [HOST...] [--print|--cloud-init]`: wiring to [`crate::bootstrap`].

use crate::bootstrap::{self, Request};
use crate::cli::{BootstrapArgs, GlobalArgs};
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &BootstrapArgs, ui: &Ui) -> anyhow::Result<i32> {
    let request = Request {
        project_dir: g.project_dir.as_deref(),
        host: g.host.as_deref(),
        env: &args.env,
        hosts: &args.hosts,
        print: args.print,
        cloud_init: args.cloud_init,
        join_token: args.join_token,
        timeout: args.timeout,
    };
    bootstrap::run(&request, ui).await
}

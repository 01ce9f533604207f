//! `twip plan ENV [--json]`: what `up` would do, with the cause of each action. Changes nothing.

use crate::cli::{GlobalArgs, PlanArgs};
use crate::plan::Options;
use crate::ui::Ui;

pub async fn run(g: &GlobalArgs, args: &PlanArgs, ui: &Ui) -> anyhow::Result<i32> {
    let t = crate::context::open_on(g, &args.env, args.lab.as_deref()).await?;
    let (_, plan) = crate::lifecycle::converge::make_plan(&t, &Options::default(), ui).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", crate::ui::clean(&plan.to_string()));
    }
    Ok(crate::exit::SUCCESS)
}

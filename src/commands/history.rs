//! `twip history ENV [N] [--json]`: the stack's releases (who changed what, when, with which
//! command, and how it ended), or one with its plan and what changed since the one before.

use crate::cli::{GlobalArgs, HistoryArgs};
use crate::exit;
use crate::lifecycle::history;
use crate::ui::{clean, Ui};

pub async fn run(g: &GlobalArgs, args: &HistoryArgs, _ui: &Ui) -> anyhow::Result<i32> {
    let t = crate::context::open_on(g, &args.env, args.lab.as_deref()).await?;
    let d = t.deployment();
    let list = history::list(&d).await?;
    match args.release {
        None if args.json => {
            let v: Vec<_> = list
                .iter()
                .rev()
                .map(|r| history::to_json(r, None, false))
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        None => print!("{}", clean(&history::table(&t.env.name, d.stack(), &list))),
        Some(n) => {
            let (r, previous) = history::find(&t.env.name, &list, n)?;
            if args.json {
                let v = history::to_json(&r, previous.as_ref(), true);
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", clean(&history::show(&r, previous.as_ref())));
            }
        }
    }
    Ok(exit::SUCCESS)
}

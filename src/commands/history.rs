//! placeholder
use crate::cli::{GlobalArgs, HistoryArgs};
use crate::ui::Ui;
pub async fn run(_g: &GlobalArgs, _args: &HistoryArgs, _ui: &Ui) -> anyhow::Result<i32> {
    anyhow::bail!("not yet")
}

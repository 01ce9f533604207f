use crate::cli::InitArgs;
use crate::ui::Ui;
pub fn run(_a: &InitArgs, _ui: &Ui) -> anyhow::Result<i32> {
    todo!()
}

use crate::cli::{GlobalArgs, ValidateArgs};
use crate::ui::Ui;
pub fn run(_g: &GlobalArgs, _a: &ValidateArgs, _ui: &Ui) -> anyhow::Result<i32> {
    todo!()
}

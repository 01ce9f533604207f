use crate::cli::{GlobalArgs, RenderArgs};
use crate::ui::Ui;
pub fn run(_g: &GlobalArgs, _a: &RenderArgs, _ui: &Ui) -> anyhow::Result<i32> {
    todo!()
}

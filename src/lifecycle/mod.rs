//! The application layer: what a command does to a stack, as plans converged through the
//! engine. Commands are wiring; this is where `up`, `scale`, `update`, `rollback` and `down`
//! meet the engine, every change through a plan: `converge` (desired -> pin -> observe ->
//! reconcile -> execute -> wait -> record), `rollback` (a recorded release as the desired
//! state), `down` (the empty desired state). `progress` shows the engine's events.

pub mod agent_image;
pub mod autoscale;
pub mod converge;
pub mod down;
pub mod history;
pub mod hooks;
pub mod images;
pub mod lock;
pub mod oneoff;
pub mod ordered;
pub mod progress;
pub mod rollback;
pub mod update;

pub use converge::{
    converge, converge_on, converge_to, desired, desired_for, make_plan, record_release, Deployment,
};

// Defined here, not in context.rs, so that the context does not import the layer that uses it.
impl crate::context::Target {
    /// What the lifecycle works on: this environment on this engine.
    pub fn deployment(&self) -> Deployment<'_> {
        Deployment {
            api: &self.docker,
            env: &self.env,
            project_dir: &self.project.dir,
            lab: self.lab.as_ref(),
        }
    }
}

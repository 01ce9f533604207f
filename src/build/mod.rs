//! Building the environment's images: [`plan`] decides purely what to build (images, platforms,
//! tags, load or push); [`run`] runs the builds with buildx and pushes with the docker CLI.

pub mod plan;
pub mod run;

pub use plan::{
    deployed_build_images, deployed_images, deployed_refs, tags, BuildOptions, ImageBuild,
};

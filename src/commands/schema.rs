//! `twip schema`: the JSON Schema (draft-07) of a manifest, for editors (yaml-language-server)
//! and linters. Derived from the same types the loader uses.

use crate::manifest::Manifest;

pub fn schema_json() -> String {
    let mut schema = schemars::schema_for!(Manifest);
    schema.schema.metadata().title = Some("twip environment manifest".into());
    serde_json::to_string_pretty(&schema).unwrap_or_default()
}

pub fn run() -> anyhow::Result<i32> {
    println!("{}", schema_json());
    Ok(crate::exit::SUCCESS)
}

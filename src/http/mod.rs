//! The one HTTP/1.1 client of twip, for `twip bench`'s load generator, `twip test` and the
//! autoscaler. Everything but [`get`] is pure:
//!
//! - [`url`]: `http://host[:port]/path` parsed and checked;
//! - [`request`]: request targets checked, `-H` headers parsed, the request bytes built;
//! - [`response`]: the response head parser and the chunked-body decoder;
//! - [`client`]: [`get`], one GET read to the end (the load generator runs its own loop in
//!   `load::client`, on the same parser).

pub mod client;
pub mod request;
pub mod response;
pub mod url;

pub use client::{get, Reply};
pub use request::{build_request, check_framing, check_request_target, parse_header, RequestSpec};
pub use response::{parse_head, Chunked, Fed, Framing, Head, ParseError};
pub use url::Url;

/// `c` for a message: `a space`, `U+000A`, `` `{` ``.
fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".to_string(),
        c if c.is_control() || !c.is_ascii() => format!("the character U+{:04X}", c as u32),
        c => format!("`{c}`"),
    }
}

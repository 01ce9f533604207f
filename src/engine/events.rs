//! What the engine layer reports while it changes a swarm or waits for it: events, not
//! output. `execute` and `wait` emit them to a [`Sink`]; the lifecycle decides how a person
//! sees them (`lifecycle::progress`), tests record them.

use crate::plan::{Op, Resource};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// One action of a plan was carried out.
    Applied {
        op: Op,
        resource: Resource,
        name: String,
    },
    /// The engine accepted a change to SERVICE with a warning.
    Warning { service: String, message: String },
    /// Waiting for these services to converge begins.
    Waiting { services: Vec<String> },
    /// A service's state changed: `2/3 running, 1 starting` (engine text: clean it to print it).
    State { service: String, line: String },
    /// A service converged (`ok`) or failed.
    Finished { service: String, ok: bool },
    /// The wait gave up on the services still pending (timeout).
    GaveUp,
}

/// Where events go.
pub trait Sink: Send {
    fn emit(&mut self, event: Event);
}

impl<F: FnMut(Event) + Send> Sink for F {
    fn emit(&mut self, event: Event) {
        self(event)
    }
}

/// Keeps every event (tests, and callers that look at them afterwards).
#[derive(Debug, Default)]
pub struct Recorder(pub Vec<Event>);

impl Sink for Recorder {
    fn emit(&mut self, event: Event) {
        self.0.push(event)
    }
}

/// Drops every event.
pub struct Discard;

impl Sink for Discard {
    fn emit(&mut self, _: Event) {}
}

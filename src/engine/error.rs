//! Engine errors, classified once at the boundary so callers can branch on the kind and
//! messages always say which operation on which resource failed.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    /// "update out of sequence": the object changed since it was read.
    OutOfSequence,
    NotManager,
    Conflict,
    Other,
}

#[derive(Debug)]
pub struct EngineError {
    pub op: String,
    pub resource: String,
    pub kind: ErrorKind,
    pub status: Option<u16>,
    pub message: String,
}

impl EngineError {
    /// An error of a known KIND (what the in-memory engine answers, or a decoding problem).
    pub fn of(
        op: &str,
        resource: &str,
        kind: ErrorKind,
        status: Option<u16>,
        message: &str,
    ) -> Self {
        EngineError {
            op: op.to_string(),
            resource: resource.to_string(),
            kind,
            status,
            message: message.to_string(),
        }
    }

    /// The same error, said of the operation the caller was doing.
    pub fn during(mut self, op: &str, resource: &str) -> Self {
        self.op = op.to_string();
        self.resource = resource.to_string();
        self
    }

    pub fn new(op: &str, resource: &str, e: bollard::errors::Error) -> Self {
        let (status, message) = match &e {
            bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            } => (Some(*status_code), message.clone()),
            // A transport error: its causes say what happened (refused, reset, ...).
            other => (None, with_sources(other)),
        };
        let lower = message.to_ascii_lowercase();
        let kind = if lower.contains("out of sequence") {
            ErrorKind::OutOfSequence
        } else if lower.contains("not a swarm manager")
            || lower.contains("this node is not a swarm manager")
        {
            ErrorKind::NotManager
        } else {
            match status {
                Some(404) => ErrorKind::NotFound,
                Some(409) if lower.contains("already exists") => ErrorKind::AlreadyExists,
                Some(409) => ErrorKind::Conflict,
                Some(503) if lower.contains("swarm") => ErrorKind::NotManager,
                _ => ErrorKind::Other,
            }
        };
        EngineError {
            op: op.to_string(),
            resource: resource.to_string(),
            kind,
            status,
            message,
        }
    }
}

/// An error's message followed by its causes' (each once).
pub fn with_sources(e: &dyn std::error::Error) -> String {
    let mut m = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !m.contains(&t) {
            m.push_str(": ");
            m.push_str(&t);
        }
        src = s.source();
    }
    m
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.resource.is_empty() {
            self.op.clone()
        } else {
            format!("{} `{}`", self.op, self.resource)
        };
        match self.status {
            Some(code) => write!(
                f,
                "failed to {what}: the engine answered {code}: {}",
                self.message
            ),
            None => write!(f, "failed to {what}: {}", self.message),
        }
    }
}

impl std::error::Error for EngineError {}

/// `.engine("create service", name)?` on bollard results.
pub trait EngineResult<T> {
    fn engine(self, op: &str, resource: &str) -> Result<T, EngineError>;
}

impl<T> EngineResult<T> for Result<T, bollard::errors::Error> {
    fn engine(self, op: &str, resource: &str) -> Result<T, EngineError> {
        self.map_err(|e| EngineError::new(op, resource, e))
    }
}

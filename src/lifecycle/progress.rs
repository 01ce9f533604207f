//! How a person sees the engine's events: `✓ created network x` for each action of a plan,
//! the engine's warnings, and while waiting, on a terminal one live line per service (a
//! spinner, then ✓ or ✗), elsewhere a plain line when a service's state changes.

use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::engine::events::{Event, Sink};
use crate::engine::execute::{resource_name, verb};
use crate::ui::Ui;

/// Shows events through a [`Ui`].
pub struct Progress<'a> {
    ui: &'a Ui,
    multi: MultiProgress,
    bars: BTreeMap<String, ProgressBar>,
}

impl<'a> Progress<'a> {
    pub fn new(ui: &'a Ui) -> Self {
        Progress {
            ui,
            multi: MultiProgress::new(),
            bars: BTreeMap::new(),
        }
    }

    fn finish(&self, service: &str, ok: bool) {
        if let Some(pb) = self.bars.get(service) {
            let mark = if ok { "✓" } else { "✗" };
            pb.set_style(
                ProgressStyle::with_template("{prefix:<30} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb.set_prefix(format!("{mark} {}", crate::ui::clean(service)));
            pb.finish();
        }
    }
}

impl Sink for Progress<'_> {
    fn emit(&mut self, event: Event) {
        match event {
            Event::Applied { op, resource, name } => {
                self.ui
                    .ok(&format!("{} {} {name}", verb(op), resource_name(resource)))
            }
            Event::Warning { service, message } => {
                eprintln!(
                    "warning: {}",
                    crate::ui::clean(&format!("{service}: {message}"))
                )
            }
            Event::Waiting { services } => {
                if self.ui.interactive && !self.ui.quiet {
                    for s in services {
                        let pb = self.multi.add(ProgressBar::new_spinner());
                        pb.set_style(
                            ProgressStyle::with_template("{spinner} {prefix:<28} {msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                        );
                        pb.set_prefix(crate::ui::clean(&s));
                        pb.enable_steady_tick(Duration::from_millis(120));
                        self.bars.insert(s, pb);
                    }
                }
            }
            Event::State { service, line } => {
                let line = crate::ui::clean(&line);
                if let Some(pb) = self.bars.get(&service) {
                    pb.set_message(line);
                } else if !self.ui.quiet {
                    eprintln!("  {}: {line}", crate::ui::clean(&service));
                }
            }
            Event::Finished { service, ok } => self.finish(&service, ok),
            Event::GaveUp => {
                for pb in self.bars.values() {
                    pb.finish();
                }
            }
        }
    }
}

/// Joining and removing nodes reports its steps through [`engine::swarm::Notes`]: shown as
/// any other message.
impl crate::engine::swarm::Notes for Ui {
    fn ok(&self, line: &str) {
        Ui::ok(self, line)
    }
    fn warn(&self, line: &str) {
        Ui::warn(self, line)
    }
    fn debug(&self, line: &str) {
        Ui::debug(self, line)
    }
}

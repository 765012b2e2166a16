//! One function per subcommand; each is a few calls into the library.

mod converge;
mod daemon;
mod doctor;
mod events;
mod gc;
mod history;
mod inspect;
mod lifecycle;
mod offline;
mod session;
mod status_source;

pub use converge::{plan, restart, rollback, start};
pub use daemon::daemon;
pub use doctor::doctor;
pub use events::events;
pub use gc::gc;
pub use history::history;
pub use inspect::{logs, status};
pub use lifecycle::{down, stop};
pub use offline::{completions, man, render, validate};

//! The budget of a render: how much work (minijinja's fuel) and output a
//! template may take, and the pieces that hold a render to it.

use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use minijinja::value::{ValueIter, ValueKind};
use minijinja::{ErrorKind, Value};

/// What one render may take. minijinja's fuel measures the work: one unit
/// per instruction, and one per 64 bytes of data the template creates
/// (strings, lists, output), so it bounds memory as well as time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Fuel units for the render. When names are undefined, the renders
    /// that look for all of them share as much again.
    pub work: u64,
    /// Bytes of rendered text.
    pub output: usize,
}

impl Budget {
    /// The largest real file (a test build's serviceset) renders in about
    /// 100 units and 2 KiB: ten thousand and two thousand times under.
    /// Running out of the work budget takes 30 to 50 ms of CPU (release).
    pub const DEFAULT: Budget = Budget {
        work: 1_000_000,
        output: 4 << 20,
    };
}

/// Which part of a [`Budget`] ran out, and its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Exhausted {
    #[error(
        "the template ran out of its work budget ({0} units): it loops or recurses too long or builds too large a value; real files use a small fraction of it, so look for a loop that does not end"
    )]
    Work(u64),
    #[error(
        "the template's output is over its cap of {} MiB ({} bytes): a loop repeats too often or a value is too large",
        .0 >> 20,
        .0
    )]
    Output(usize),
    /// The backstop for work minijinja does not charge (see
    /// `serviceset::TEMPLATE_TIME`).
    #[error(
        "the template did not finish rendering within {}s: it builds a value too large to print (a list repeated with `*` and turned into text?); real files render in well under a millisecond",
        .0.as_secs()
    )]
    Time(std::time::Duration),
}

/// Writes what `{{ … }}` prints, counting it into `emitted` and refusing
/// once that passes `cap`. minijinja pays for a string with fuel when it is
/// made, but walks a container only as it prints it — a list repeated with
/// `*` is lazy, its size unknown until then — so containers are printed
/// through the cap, never past it.
pub(super) fn bounded_formatter(
    cap: usize,
    emitted: Arc<AtomicUsize>,
) -> impl Fn(&mut minijinja::Output, &mut minijinja::State, &Value) -> Result<(), minijinja::Error>
+ Send
+ Sync
+ 'static {
    move |out, _state, value| {
        let over = || {
            emitted.store(cap.saturating_add(1), Ordering::Relaxed);
            minijinja::Error::new(ErrorKind::InvalidOperation, "output over its cap")
        };
        let left = cap.saturating_sub(emitted.load(Ordering::Relaxed));
        let mut text = Capped {
            text: String::new(),
            left,
        };
        let text = match value.as_str() {
            Some(s) if s.len() <= left => s,
            Some(_) => return Err(over()),
            // minijinja's printing walks every item even once writing
            // fails: count the items first.
            None if prints_more_than(value, left) => return Err(over()),
            None => {
                write!(text, "{value}").map_err(|_| over())?;
                text.text.as_str()
            }
        };
        emitted.fetch_add(text.len(), Ordering::Relaxed);
        out.write_str(text).map_err(|_| over())
    }
}

/// A string that refuses to grow past `left` more bytes.
struct Capped {
    text: String,
    left: usize,
}

impl fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.left = self.left.checked_sub(s.len()).ok_or(fmt::Error)?;
        self.text.push_str(s);
        Ok(())
    }
}

/// Whether printing `value` takes more than `left` bytes, judged without
/// printing it: every item of a list or map prints at least one byte, so
/// the walk stops once it has counted more than `left` items. A list
/// repeated lazily (`[[1] * 10**8] * 10**8`) is refused after `left` steps.
fn prints_more_than(value: &Value, left: usize) -> bool {
    let mut counted = 0usize;
    // Depth first, one iterator per open container (never all the items).
    let mut open: Vec<(Value, ValueIter)> = Vec::new();
    let mut next = Some(value.clone());
    loop {
        if let Some(v) = next.take()
            && matches!(
                v.kind(),
                ValueKind::Seq | ValueKind::Map | ValueKind::Iterable
            )
            && let Ok(items) = v.try_iter()
        {
            open.push((v, items));
        }
        let Some((container, items)) = open.last_mut() else {
            return false;
        };
        let Some(item) = items.next() else {
            open.pop();
            continue;
        };
        counted += 1;
        if counted > left {
            return true;
        }
        // A map yields its keys; what it prints below them are the values.
        next = Some(match container.kind() {
            ValueKind::Map => container.get_item(&item).unwrap_or_default(),
            _ => item,
        });
    }
}

/// The fuel of each render pass of one text. The first pass may use the
/// whole budget. Once a name is found undefined, the passes that look for
/// more share as much again: each gets an allowance (a 64th to start with),
/// is charged all of it, and the allowance doubles when it was not enough.
/// So the passes together never use more than twice the budget, however
/// many names are missing.
pub(super) struct Passes {
    work: u64,
    search: Option<Search>,
}

struct Search {
    left: u64,
    allowance: u64,
}

impl Passes {
    pub(super) fn new(work: u64) -> Self {
        Passes { work, search: None }
    }

    /// The fuel for the next pass; `None` when the search has used its share.
    pub(super) fn next(&mut self) -> Option<u64> {
        let Some(search) = &mut self.search else {
            return Some(self.work);
        };
        let give = search.allowance.min(search.left);
        search.left -= give;
        (give > 0).then_some(give)
    }

    /// A name is undefined: from now on, passes search for more.
    pub(super) fn searching(&mut self) {
        let work = self.work;
        self.search.get_or_insert(Search {
            left: work,
            allowance: (work / 64).max(1),
        });
    }

    /// A searching pass ran out: the next one gets twice the allowance.
    pub(super) fn ran_out(&mut self) {
        if let Some(search) = &mut self.search {
            search.allowance = search.allowance.saturating_mul(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_passes_use_at_most_the_budget_again() {
        for work in [1, 63, 64, 1000, 1_000_000] {
            let mut passes = Passes::new(work);
            assert_eq!(passes.next(), Some(work), "the first pass has it all");
            passes.searching();
            let mut given = 0;
            while let Some(fuel) = passes.next() {
                given += fuel;
                passes.ran_out();
            }
            assert_eq!(given, work, "{work}");
        }
    }

    #[test]
    fn the_size_of_a_container_is_judged_by_counting_items() {
        let env = minijinja::Environment::new();
        let value = |expr: &str| env.compile_expression(expr).unwrap().eval(()).unwrap();
        for (expr, left, over) in [
            ("[1, 2, 3]", 3, false),
            ("[1, 2, 3]", 2, true),
            ("{'a': [1, 2], 'b': 3}", 4, false),
            ("{'a': [1, 2], 'b': 3}", 3, true),
            ("[[1] * 10**8] * 10**8", 1_000_000, true),
            ("'not a container'", 0, false),
        ] {
            assert_eq!(
                prints_more_than(&value(expr), left),
                over,
                "{expr} within {left}"
            );
        }
    }
}

//! Backend-neutral rules every backend shares: deriving a work spec's meta
//! from its definition, parsing `output` for chaining, the scheduler, and
//! the [`limits`] on what callers store.
//!
//! They are pure functions of their inputs (time included), so each is unit
//! tested here once rather than through every backend.

mod definition;
pub mod limits;
mod output;
mod schedule;

pub use definition::{checked_definition, merge_set_meta, parse_definition, ParsedDefinition};
pub use output::{chained_units, parse_item, parse_output, NewUnit};
pub use schedule::{
    attempt_count, can_do_work, can_start_continuous, continuous_unit_name, fits_memory,
    make_attempt_lifetime, schedule, schedule_with, too_many_retries_data, unit_status, SpecChoice,
};

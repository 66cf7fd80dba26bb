//! Checks of the settlement contract through its public API.

mod events;
mod stored;

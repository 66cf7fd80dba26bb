//! Checks of the logistics contract through its public API.

mod events;
mod stored;

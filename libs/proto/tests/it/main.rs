//! Checks of the contract itself, read from the descriptors the crate embeds.

mod documented;

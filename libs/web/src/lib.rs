//! What the public pages and the printed labels of the platform share, with no knowledge of what
//! they show: plain strings in, bytes or strings out.
//!
//! - `qr`: a QR code of a text (a passport's URL, a GS1 Digital Link) as SVG, as PNG, or as its
//!   matrix of modules for another renderer;
//! - `lang`: the language of a page, from an explicit choice or the `Accept-Language` header;
//! - `html`: escaping text into HTML;
//! - `labels`: an A4 sheet of labels as PDF, each with a QR code, a title and a few lines.
//!
//! This crate must never do I/O, read the clock, or know the domain: the services decide what
//! to print and hand it over as text. Every input is bounded by a named limit.

pub mod html;
pub mod labels;
pub mod lang;
pub mod qr;

pub use labels::{Label, LabelError};
pub use lang::Lang;
pub use qr::{Modules, QrError};

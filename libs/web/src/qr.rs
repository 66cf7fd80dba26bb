//! QR codes of short texts: the URL of a public page, a GS1 Digital Link.
//!
//! Every code is encoded at error correction level M (about 15 % of the code can be lost and it
//! still reads): labels are printed and stuck on pallets and bags, where they get scuffed and
//! dirty, and level M keeps a URL's code small enough to stay large in its modules.
//!
//! Each rendering is black on white with a quiet zone of `QUIET_ZONE_MODULES` light modules on
//! every side, which scanners need to find the code.

use std::fmt::Write as _;

use qrcode::{EcLevel, QrCode};

/// Longest text encoded, in bytes: a URL with a few identifiers is about a hundred; the limit
/// keeps every code small enough to be read from a printed label.
pub const QR_TEXT_BYTES_MAX: usize = 512;
/// Light modules around the code on every side, as the QR code standard asks.
pub const QUIET_ZONE_MODULES: usize = 4;
/// Largest module of a PNG, in pixels (the smallest is 1): a code of `QR_TEXT_BYTES_MAX` bytes
/// is then about 3,000 pixels wide.
pub const MODULE_PX_MAX: u32 = 32;

/// Why a text has no QR code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    #[error("qr text too long: {bytes} bytes, at most {QR_TEXT_BYTES_MAX}")]
    TooLong { bytes: usize },
    #[error("qr text cannot be encoded: {0}")]
    Unencodable(String),
    #[error("qr png cannot be written: {0}")]
    Png(String),
}

/// The modules of a QR code, without its quiet zone: `width` rows of `width` modules, dark or
/// light. For renderers other than `svg` and `png`, such as the PDF labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modules {
    width: usize,
    dark: Vec<bool>,
}

impl Modules {
    /// Modules on a side (21 to 177).
    pub fn width(&self) -> usize {
        self.width
    }

    /// Whether the module at column `x` and row `y` (from the top left) is dark.
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        assert!(x < self.width && y < self.width, "module ({x}, {y}) outside a code of {}", self.width);
        self.dark[y * self.width + x]
    }

    /// The runs of dark modules of row `y`, as (first column, length), left to right: one
    /// rectangle each is enough to draw the row.
    pub fn dark_runs(&self, y: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        assert!(y < self.width, "row {y} outside a code of {}", self.width);
        let row = &self.dark[y * self.width..(y + 1) * self.width];
        let mut x = 0;
        std::iter::from_fn(move || {
            while x < row.len() && !row[x] {
                x += 1;
            }
            let start = x;
            while x < row.len() && row[x] {
                x += 1;
            }
            (x > start).then_some((start, x - start))
        })
    }
}

impl Modules {
    /// The code as a standalone SVG document: see [`svg`].
    pub fn svg(&self) -> String {
        let side = self.width + 2 * QUIET_ZONE_MODULES;
        let mut out = String::with_capacity(64 * side);
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side} {side}" shape-rendering="crispEdges"><rect width="{side}" height="{side}" fill="#fff"/><path fill="#000" d=""##
        );
        // Each run of dark modules of a row is one closed rectangle of the path.
        for y in 0..self.width {
            for (x, length) in self.dark_runs(y) {
                let _ = write!(
                    out,
                    "M{} {}h{length}v1h-{length}z",
                    x + QUIET_ZONE_MODULES,
                    y + QUIET_ZONE_MODULES
                );
            }
        }
        out.push_str(r#""/></svg>"#);
        out
    }

    /// The code as a PNG image, `module_px` pixels a module: see [`png`].
    pub fn png(&self, module_px: u32) -> Result<Vec<u8>, QrError> {
        let module_px = module_px.clamp(1, MODULE_PX_MAX) as usize;
        let side_px = (self.width + 2 * QUIET_ZONE_MODULES) * module_px;
        // One row of pixels packed 8 to a byte, the first pixel in the high bit; 1 is white.
        let row_bytes = side_px.div_ceil(8);
        let mut pixels = vec![0xff_u8; row_bytes * side_px];
        for y in 0..self.width {
            let mut row = vec![0xff_u8; row_bytes];
            for (x, length) in self.dark_runs(y) {
                let first_px = (x + QUIET_ZONE_MODULES) * module_px;
                for px in first_px..first_px + length * module_px {
                    row[px / 8] &= !(0x80 >> (px % 8));
                }
            }
            let first_row_px = (y + QUIET_ZONE_MODULES) * module_px;
            for row_px in first_row_px..first_row_px + module_px {
                pixels[row_px * row_bytes..(row_px + 1) * row_bytes].copy_from_slice(&row);
            }
        }

        let side_px = u32::try_from(side_px).expect("a code of at most 177 modules and 32 pixels a module");
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, side_px, side_px);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        let mut writer = encoder.write_header().map_err(|error| QrError::Png(error.to_string()))?;
        writer.write_image_data(&pixels).map_err(|error| QrError::Png(error.to_string()))?;
        writer.finish().map_err(|error| QrError::Png(error.to_string()))?;
        Ok(out)
    }
}

/// The modules of the QR code of `text`.
pub fn modules(text: &str) -> Result<Modules, QrError> {
    if text.len() > QR_TEXT_BYTES_MAX {
        return Err(QrError::TooLong { bytes: text.len() });
    }
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|error| QrError::Unencodable(error.to_string()))?;
    let width = code.width();
    let dark = code.into_colors().into_iter().map(|color| color == qrcode::Color::Dark).collect();
    Ok(Modules { width, dark })
}

/// The QR code of `text` as a standalone SVG document: a white square and one black path, one
/// unit a module, scalable to any size through its `viewBox` (the page gives it its size), with
/// `shape-rendering="crispEdges"` so that modules do not blur into each other. It refers to
/// nothing outside itself.
pub fn svg(text: &str) -> Result<String, QrError> {
    Ok(modules(text)?.svg())
}

/// The QR code of `text` as a PNG image: 1-bit greyscale (the smallest PNG of a black and white
/// picture), `module_px` pixels a module, clamped to 1..=`MODULE_PX_MAX`.
pub fn png(text: &str, module_px: u32) -> Result<Vec<u8>, QrError> {
    modules(text)?.png(module_px)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSPORT_URL: &str = "https://passports.example.eu/p/0190f1d2-7c3a-7b4e-9f21-3c5d8e6a1b04";
    const DIGITAL_LINK: &str = "https://passports.example.eu/01/03012345678901/10/LOT-2026-17";

    /// The text a QR decoder reads in a greyscale picture (0 black, 255 white).
    #[track_caller]
    fn decode(width: usize, height: usize, pixel: impl Fn(usize, usize) -> u8) -> String {
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, pixel);
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one code in the picture");
        let (_, text) = grids[0].decode().expect("a code that decodes");
        text
    }

    #[track_caller]
    fn decode_png(png_bytes: &[u8]) -> (u32, String) {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().expect("a PNG");
        let mut buffer = vec![0; reader.output_buffer_size().expect("a small picture")];
        let frame = reader.next_frame(&mut buffer).expect("its pixels");
        assert_eq!(frame.color_type, png::ColorType::Grayscale);
        assert_eq!(frame.bit_depth, png::BitDepth::Eight, "expanded to a byte a pixel");
        let (width, height) = (frame.width as usize, frame.height as usize);
        assert_eq!(width, height, "square");
        let text = decode(width, height, |x, y| buffer[y * frame.line_size + x]);
        (frame.width, text)
    }

    #[test]
    fn the_png_reads_back_as_the_url() {
        for text in [PASSPORT_URL, DIGITAL_LINK] {
            let modules = modules(text).unwrap();
            let (side_px, decoded) = decode_png(&png(text, 4).unwrap());
            assert_eq!(decoded, text);
            assert_eq!(side_px as usize, (modules.width() + 2 * QUIET_ZONE_MODULES) * 4);
        }
    }

    #[test]
    fn the_module_size_is_clamped() {
        let modules = modules(DIGITAL_LINK).unwrap();
        let side = modules.width() + 2 * QUIET_ZONE_MODULES;
        // Zero pixels a module is one; a pixel a module still reads.
        let (side_px, decoded) = decode_png(&png(DIGITAL_LINK, 0).unwrap());
        assert_eq!((side_px as usize, decoded.as_str()), (side, DIGITAL_LINK));
        let (side_px, _) = decode_png(&png(DIGITAL_LINK, 1000).unwrap());
        assert_eq!(side_px as usize, side * MODULE_PX_MAX as usize);
    }

    #[test]
    fn the_modules_read_back_as_the_url() {
        for text in [PASSPORT_URL, DIGITAL_LINK, "x", &"é".repeat(QR_TEXT_BYTES_MAX / 2)] {
            let modules = modules(text).unwrap();
            let module_px = 3;
            let side_px = (modules.width() + 2 * QUIET_ZONE_MODULES) * module_px;
            let decoded = decode(side_px, side_px, |x, y| {
                let (column, row) = (x / module_px, y / module_px);
                let inside = (QUIET_ZONE_MODULES..QUIET_ZONE_MODULES + modules.width()).contains(&column)
                    && (QUIET_ZONE_MODULES..QUIET_ZONE_MODULES + modules.width()).contains(&row);
                let dark = inside && modules.is_dark(column - QUIET_ZONE_MODULES, row - QUIET_ZONE_MODULES);
                if dark { 0 } else { 255 }
            });
            assert_eq!(decoded, text);
        }
    }

    #[test]
    fn runs_cover_the_dark_modules_of_a_row() {
        let modules = modules(PASSPORT_URL).unwrap();
        for y in 0..modules.width() {
            let mut from_runs = vec![false; modules.width()];
            for (x, length) in modules.dark_runs(y) {
                assert!(length > 0);
                from_runs[x..x + length].iter_mut().for_each(|dark| *dark = true);
            }
            let row: Vec<bool> = (0..modules.width()).map(|x| modules.is_dark(x, y)).collect();
            assert_eq!(from_runs, row, "row {y}");
        }
    }

    #[test]
    fn the_svg_is_standalone_and_scalable() {
        let modules = modules(PASSPORT_URL).unwrap();
        let svg = svg(PASSPORT_URL).unwrap();
        let side = modules.width() + 2 * QUIET_ZONE_MODULES;
        assert!(svg.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg" "#), "{svg}");
        assert!(svg.ends_with("</svg>"), "{svg}");
        assert!(svg.contains(&format!(r#"viewBox="0 0 {side} {side}""#)), "{svg}");
        assert!(svg.contains(r#"shape-rendering="crispEdges""#), "{svg}");
        assert_eq!(svg.matches("http").count(), 1, "no reference but the namespace: {svg}");
        assert!(!svg.contains("href"), "{svg}");
        assert_eq!(svg.matches('<').count(), 4, "svg, rect, path, end of svg: {svg}");
        assert_eq!(svg.matches('"').count() % 2, 0, "quotes paired: {svg}");
        // A rectangle a run, not a module: a URL's code stays a few kilobytes.
        let runs: usize = (0..modules.width()).map(|y| modules.dark_runs(y).count()).sum();
        assert_eq!(svg.matches('M').count(), runs);
        assert!(svg.len() < 8 * 1024, "{} bytes", svg.len());
    }

    #[test]
    fn the_svg_path_draws_the_modules() {
        // Reads the path back into modules: each `Mx yhNv1h-Nz` darkens N modules of row y.
        let modules = modules(DIGITAL_LINK).unwrap();
        let svg = svg(DIGITAL_LINK).unwrap();
        let path = svg.split(r#" d=""#).nth(1).unwrap().split('"').next().unwrap();
        let side = modules.width() + 2 * QUIET_ZONE_MODULES;
        let mut dark = vec![false; side * side];
        for command in path.split('M').skip(1) {
            let (x, rest) = command.split_once(' ').unwrap();
            let (y, rest) = rest.split_once('h').unwrap();
            let (length, rest) = rest.split_once('v').unwrap();
            assert_eq!(rest, format!("1h-{length}z"));
            let (x, y, length): (usize, usize, usize) =
                (x.parse().unwrap(), y.parse().unwrap(), length.parse().unwrap());
            dark[y * side + x..y * side + x + length].iter_mut().for_each(|module| *module = true);
        }
        let decoded = decode(side * 2, side * 2, |x, y| if dark[(y / 2) * side + x / 2] { 0 } else { 255 });
        assert_eq!(decoded, DIGITAL_LINK);
    }

    #[test]
    fn texts_past_the_limit_are_refused() {
        let long = "a".repeat(QR_TEXT_BYTES_MAX + 1);
        let error = modules(&long).unwrap_err();
        assert_eq!(error, QrError::TooLong { bytes: QR_TEXT_BYTES_MAX + 1 });
        assert_eq!(error.to_string(), "qr text too long: 513 bytes, at most 512");
        assert_eq!(svg(&long).unwrap_err(), error);
        assert_eq!(png(&long, 4).unwrap_err(), error);
        assert!(modules(&"a".repeat(QR_TEXT_BYTES_MAX)).is_ok());
    }
}

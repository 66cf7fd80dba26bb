//! An A4 sheet of labels as PDF, to print and stick on what a QR code describes (a pallet, a
//! bag, a batch of parts).
//!
//! The sheet has the layout of the common stock of 8 labels of 99.1 x 67.7 mm (2 columns, 4
//! rows, as Avery L7165), so it prints on precut labels, or on plain paper cut along the light
//! border of each label. A label holds its QR code drawn as vector squares (sharp at any printer
//! resolution), its URL in small type under the code for a reader without a phone, a title in
//! Helvetica-Bold and up to `LABEL_LINES_MAX` lines in Helvetica. Text too wide for its place is
//! cut and ends with `…`; more labels than a page holds go on further pages.
//!
//! The fonts are two of the standard fonts every PDF reader has, so nothing is embedded and a
//! sheet of 8 labels is a few tens of kilobytes. Their text is written in WinAnsiEncoding:
//! Latin-1 and the few other letters of Western European names (`Œ`, `€`, typographic quotes);
//! any other character prints as `?`.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::qr::{self, QUIET_ZONE_MODULES, QrError};

/// Most labels of one sheet: 12 pages.
pub const LABELS_MAX: usize = 96;
/// Labels on one page: 2 columns of 4.
pub const LABELS_PER_PAGE: usize = COLUMNS * ROWS;
/// Most lines of text under a label's title; further lines are not printed.
pub const LABEL_LINES_MAX: usize = 4;

/// One label: the URL its QR code opens, a title and a few lines of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// What the QR code encodes, at most `qr::QR_TEXT_BYTES_MAX` bytes; also printed in small
    /// type under it.
    pub url: String,
    /// In bold, on one line.
    pub title: String,
    /// Up to `LABEL_LINES_MAX` lines under the title.
    pub lines: Vec<String>,
}

/// Why a sheet cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("no labels to print")]
    Empty,
    #[error("too many labels: {count}, at most {LABELS_MAX}")]
    TooMany { count: usize },
    #[error("label {index} url: {source}")]
    Qr {
        /// From 0, in the order given.
        index: usize,
        source: QrError,
    },
}

/// The PDF of `labels` in order, left to right then top to bottom, `LABELS_PER_PAGE` to a page,
/// with `heading` and the page number printed in the top margin of each page.
pub fn sheet(labels: &[Label], heading: &str) -> Result<Vec<u8>, LabelError> {
    if labels.is_empty() {
        return Err(LabelError::Empty);
    }
    if labels.len() > LABELS_MAX {
        return Err(LabelError::TooMany { count: labels.len() });
    }
    // A sheet is mostly one lot's label again and again: a code is encoded once per text.
    let mut codes: Vec<std::rc::Rc<qr::Modules>> = Vec::with_capacity(labels.len());
    for (index, label) in labels.iter().enumerate() {
        let same = labels[..index].iter().position(|earlier| earlier.url == label.url);
        let code = match same {
            Some(earlier) => codes[earlier].clone(),
            None => {
                std::rc::Rc::new(qr::modules(&label.url).map_err(|source| LabelError::Qr { index, source })?)
            }
        };
        codes.push(code);
    }

    let pages: Vec<&[Label]> = labels.chunks(LABELS_PER_PAGE).collect();
    let catalog_id = Ref::new(1);
    let page_tree_id = Ref::new(2);
    let regular_id = Ref::new(3);
    let bold_id = Ref::new(4);
    let info_id = Ref::new(5);
    // Then a page and its content stream for each page.
    let page_ids: Vec<(Ref, Ref)> =
        (0..pages.len() as i32).map(|index| (Ref::new(6 + 2 * index), Ref::new(7 + 2 * index))).collect();

    let mut pdf = Pdf::new();
    pdf.catalog(catalog_id).pages(page_tree_id);
    pdf.pages(page_tree_id).kids(page_ids.iter().map(|(page, _)| *page)).count(pages.len() as i32);
    pdf.type1_font(regular_id).base_font(Name(b"Helvetica")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold_id).base_font(Name(b"Helvetica-Bold")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.document_info(info_id).title(TextStr(heading));
    for (page_index, (page_labels, (page_id, content_id))) in pages.iter().zip(&page_ids).enumerate() {
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, mm(PAGE_WIDTH_MM), mm(PAGE_HEIGHT_MM)));
        page.parent(page_tree_id);
        page.contents(*content_id);
        page.resources().fonts().pair(Font::Regular.name(), regular_id).pair(Font::Bold.name(), bold_id);
        page.finish();

        let mut content = Content::new();
        let page_heading = format!("{heading} — {}/{}", page_index + 1, pages.len());
        let heading_width_pt = mm(PAGE_WIDTH_MM - 2.0 * SHEET_LEFT_MM);
        text(
            &mut content,
            Font::Regular,
            HEADING_PT,
            mm(SHEET_LEFT_MM),
            y_pt(HEADING_BASELINE_MM),
            heading_width_pt,
            &page_heading,
        );
        for (slot, label) in page_labels.iter().enumerate() {
            let modules = &codes[page_index * LABELS_PER_PAGE + slot];
            let left_mm = SHEET_LEFT_MM + (slot % COLUMNS) as f32 * COLUMN_PITCH_MM;
            let top_mm = SHEET_TOP_MM + (slot / COLUMNS) as f32 * LABEL_HEIGHT_MM;
            draw_label(&mut content, label, modules, left_mm, top_mm);
        }
        pdf.stream(*content_id, &content.finish());
    }
    Ok(pdf.finish())
}

// The page and the label stock, in millimetres from the top left corner of the page.
const PAGE_WIDTH_MM: f32 = 210.0;
const PAGE_HEIGHT_MM: f32 = 297.0;
const COLUMNS: usize = 2;
const ROWS: usize = 4;
const LABEL_WIDTH_MM: f32 = 99.1;
const LABEL_HEIGHT_MM: f32 = 67.7;
/// From the page's left edge to the first column.
const SHEET_LEFT_MM: f32 = 4.65;
/// From the page's top edge to the first row.
const SHEET_TOP_MM: f32 = 13.1;
/// From one column's left edge to the next's: a gap of 2.5 mm.
const COLUMN_PITCH_MM: f32 = 101.6;
const HEADING_BASELINE_MM: f32 = 8.5;

// A label's parts, in millimetres from its top left corner.
const PADDING_MM: f32 = 4.0;
/// The side of the square of the QR code, its quiet zone included: the code itself is at least
/// 29 mm wide (a code of 21 modules), more than the 25 mm a phone reads from arm's length.
const QR_BOX_MM: f32 = 42.0;
const QR_BOX_LEFT_MM: f32 = 1.5;
const QR_BOX_TOP_MM: f32 = 10.0;
const URL_BASELINE_MM: f32 = QR_BOX_TOP_MM + QR_BOX_MM + 3.5;
const TEXT_LEFT_MM: f32 = QR_BOX_LEFT_MM + QR_BOX_MM + 2.5;
const TITLE_BASELINE_MM: f32 = 16.5;
const FIRST_LINE_BASELINE_MM: f32 = 23.0;
const LINE_LEADING_MM: f32 = 4.6;

// Type sizes, in points.
const HEADING_PT: f32 = 8.0;
const TITLE_PT: f32 = 11.0;
const LINE_PT: f32 = 9.0;
const URL_PT: f32 = 6.5;
/// The label's border: thin and light, a guide for scissors that does not distract.
const BORDER_PT: f32 = 0.3;
const BORDER_GRAY: f32 = 0.8;

/// Points (1/72 inch) in a millimetre.
const PT_PER_MM: f32 = 72.0 / 25.4;

/// `value_mm` in points.
fn mm(value_mm: f32) -> f32 {
    value_mm * PT_PER_MM
}

/// The PDF's y (from the bottom, in points) of a line `from_top_mm` below the page's top.
fn y_pt(from_top_mm: f32) -> f32 {
    mm(PAGE_HEIGHT_MM - from_top_mm)
}

/// Draws one label whose top left corner is at (`left_mm`, `top_mm`) of the page.
fn draw_label(content: &mut Content, label: &Label, modules: &qr::Modules, left_mm: f32, top_mm: f32) {
    let bottom_pt = y_pt(top_mm + LABEL_HEIGHT_MM);
    // Nothing of a label is drawn outside it, whatever its text.
    content.save_state();
    content.rect(mm(left_mm), bottom_pt, mm(LABEL_WIDTH_MM), mm(LABEL_HEIGHT_MM));
    content.clip_nonzero();
    content.end_path();

    content.set_stroke_gray(BORDER_GRAY);
    content.set_line_width(BORDER_PT);
    let inset_pt = BORDER_PT / 2.0;
    content.rect(
        mm(left_mm) + inset_pt,
        bottom_pt + inset_pt,
        mm(LABEL_WIDTH_MM) - BORDER_PT,
        mm(LABEL_HEIGHT_MM) - BORDER_PT,
    );
    content.stroke();

    // The code: one filled rectangle for each run of dark modules of a row.
    let side_modules = modules.width() + 2 * QUIET_ZONE_MODULES;
    let module_pt = mm(QR_BOX_MM) / side_modules as f32;
    let code_left_pt = mm(left_mm + QR_BOX_LEFT_MM) + QUIET_ZONE_MODULES as f32 * module_pt;
    let code_top_pt = y_pt(top_mm + QR_BOX_TOP_MM) - QUIET_ZONE_MODULES as f32 * module_pt;
    content.set_fill_gray(0.0);
    for y in 0..modules.width() {
        for (x, length) in modules.dark_runs(y) {
            content.rect(
                code_left_pt + x as f32 * module_pt,
                code_top_pt - (y + 1) as f32 * module_pt,
                length as f32 * module_pt,
                module_pt,
            );
        }
    }
    content.fill_nonzero();

    let url_width_pt = mm(LABEL_WIDTH_MM - 2.0 * PADDING_MM);
    text(
        content,
        Font::Regular,
        URL_PT,
        mm(left_mm + PADDING_MM),
        y_pt(top_mm + URL_BASELINE_MM),
        url_width_pt,
        &label.url,
    );
    let text_left_pt = mm(left_mm + TEXT_LEFT_MM);
    let text_width_pt = mm(LABEL_WIDTH_MM - TEXT_LEFT_MM - PADDING_MM);
    text(
        content,
        Font::Bold,
        TITLE_PT,
        text_left_pt,
        y_pt(top_mm + TITLE_BASELINE_MM),
        text_width_pt,
        &label.title,
    );
    for (index, line) in label.lines.iter().take(LABEL_LINES_MAX).enumerate() {
        let baseline_mm = top_mm + FIRST_LINE_BASELINE_MM + index as f32 * LINE_LEADING_MM;
        text(content, Font::Regular, LINE_PT, text_left_pt, y_pt(baseline_mm), text_width_pt, line);
    }
    content.restore_state();
}

/// Writes `value` on one line from (`x_pt`, `y_pt`), cut to `width_pt`.
fn text(content: &mut Content, font: Font, size_pt: f32, x_pt: f32, y_pt: f32, width_pt: f32, value: &str) {
    content.begin_text();
    content.set_font(font.name(), size_pt);
    content.next_line(x_pt, y_pt);
    content.show(Str(&fit(value, font, width_pt * 1000.0 / size_pt)));
    content.end_text();
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Font {
    Regular,
    Bold,
}

impl Font {
    /// Its name in the pages' resources.
    fn name(self) -> Name<'static> {
        match self {
            Font::Regular => Name(b"F1"),
            Font::Bold => Name(b"F2"),
        }
    }

    /// The advance of the WinAnsi character `byte`, in thousandths of the type size: the
    /// widths of the fonts' metrics for ASCII; for the other characters, the widest of their
    /// kind, so that a cut line never runs over.
    fn width(self, byte: u8) -> u16 {
        match byte {
            b' '..=b'~' => {
                let widths = match self {
                    Font::Regular => &HELVETICA_ASCII,
                    Font::Bold => &HELVETICA_BOLD_ASCII,
                };
                widths[usize::from(byte - b' ')]
            }
            // Æ and æ are the widest letters of their rows.
            0xc6 => 1000,
            0xe6 => 889,
            // Capitals with accents, ×, Ø, Þ, ß.
            0xc0..=0xdf => 778,
            // Small letters with accents, ÷, ø, þ.
            0xe0..=0xff => 611,
            // Signs, quotes, Œ, …: none is wider than an em.
            _ => 1000,
        }
    }
}

/// The WinAnsi code of `…`, which ends a line that was cut.
const ELLIPSIS: u8 = 0x85;

/// `value` in WinAnsiEncoding, cut so that it is at most `width_em` thousandths of the type size
/// wide, with `…` at the end when it was cut. Spaces of any kind (tabs, new lines) are spaces.
fn fit(value: &str, font: Font, width_em: f32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut width = 0.0;
    // The longest head of `value` that leaves room for the ellipsis.
    let mut cut_at = None;
    for character in value.chars() {
        let byte = win_ansi(character);
        width += f32::from(font.width(byte));
        if cut_at.is_none() && width + f32::from(font.width(ELLIPSIS)) > width_em {
            cut_at = Some(out.len());
        }
        if width > width_em {
            let mut cut = out[..cut_at.unwrap_or(0)].to_vec();
            while cut.last() == Some(&b' ') {
                cut.pop();
            }
            cut.push(ELLIPSIS);
            return cut;
        }
        out.push(byte);
    }
    out
}

/// The WinAnsiEncoding (Windows-1252) code of `character`: Latin-1 as is, the letters and signs
/// of 0x80 to 0x9F from their table, any space a space, anything else `?`: how text reaches a
/// PDF written with the base-14 fonts (the labels here, the Annex VII document).
pub fn win_ansi(character: char) -> u8 {
    match character {
        ' '..='~' | '\u{a0}'..='\u{ff}' => character as u8,
        '€' => 0x80,
        '‚' => 0x82,
        'ƒ' => 0x83,
        '„' => 0x84,
        '…' => 0x85,
        '†' => 0x86,
        '‡' => 0x87,
        'ˆ' => 0x88,
        '‰' => 0x89,
        'Š' => 0x8a,
        '‹' => 0x8b,
        'Œ' => 0x8c,
        'Ž' => 0x8e,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '–' => 0x96,
        '—' => 0x97,
        '˜' => 0x98,
        '™' => 0x99,
        'š' => 0x9a,
        '›' => 0x9b,
        'œ' => 0x9c,
        'ž' => 0x9e,
        'Ÿ' => 0x9f,
        _ if character.is_whitespace() => b' ',
        _ => b'?',
    }
}

/// Advances of Helvetica's characters from ` ` to `~`, in thousandths of the type size (Adobe's
/// font metrics).
const HELVETICA_ASCII: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // ' ' to '/'
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // '0' to '?'
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // '@' to 'O'
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // 'P' to '_'
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // '`' to 'o'
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // 'p' to '~'
];

/// Advances of Helvetica-Bold's characters from ` ` to `~`, in thousandths of the type size.
const HELVETICA_BOLD_ASCII: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, // ' ' to '/'
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, // '0' to '?'
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778, // '@' to 'O'
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556, // 'P' to '_'
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, // '`' to 'o'
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, // 'p' to '~'
];

#[cfg(test)]
mod tests {
    use super::*;

    fn label(number: usize) -> Label {
        Label {
            url: format!("https://passports.example.eu/p/0190f1d2-7c3a-7b4e-9f21-{number:012}"),
            title: format!("Palettes EUR n° {number}"),
            lines: vec![
                "Bois de palette, classe A".to_owned(),
                "Lot LOT-2026-17".to_owned(),
                "Straßburger Straße 12, Kehl".to_owned(),
                "Contenu recyclé : 35 %".to_owned(),
                "A fifth line is not printed".to_owned(),
            ],
        }
    }

    fn labels(count: usize) -> Vec<Label> {
        (1..=count).map(label).collect()
    }

    /// The text of each page of `pdf`, as a reader extracts it.
    #[track_caller]
    fn pages_text(pdf: &[u8]) -> Vec<String> {
        assert!(pdf.starts_with(b"%PDF-"), "a PDF");
        let read = lopdf::Document::load_mem(pdf).expect("a PDF lopdf reads");
        read.get_pages().keys().map(|page| read.extract_text(&[*page]).expect("its text")).collect()
    }

    #[test]
    fn eight_labels_to_a_page() {
        for (count, pages) in [(1, 1), (7, 1), (8, 1), (9, 2), (16, 2), (17, 3), (LABELS_MAX, 12)] {
            let pdf = sheet(&labels(count), "Étiquettes").unwrap();
            assert_eq!(pages_text(&pdf).len(), pages, "{count} labels");
        }
    }

    #[test]
    fn the_pages_hold_the_text_of_their_labels() {
        let pdf = sheet(&labels(9), "Étiquettes — Emballages du Rhin").unwrap();
        let pages = pages_text(&pdf);
        assert!(pages[0].contains("Étiquettes — Emballages du Rhin — 1/2"), "{}", pages[0]);
        assert!(pages[1].contains("Étiquettes — Emballages du Rhin — 2/2"), "{}", pages[1]);
        for number in 1..=8 {
            assert!(pages[0].contains(&format!("Palettes EUR n° {number}\n")), "{}", pages[0]);
        }
        assert!(!pages[0].contains("Palettes EUR n° 9"), "{}", pages[0]);
        assert!(pages[1].contains("Palettes EUR n° 9"), "{}", pages[1]);
        for expected in [
            "Bois de palette, classe A",
            "Straßburger Straße 12, Kehl",
            "Contenu recyclé : 35 %",
            "https://passports.example.eu/p/0190f1d2-7c3a-7b4e-9f21-000000000009",
        ] {
            assert!(pages[1].contains(expected), "{expected:?} in {}", pages[1]);
        }
        assert!(!pages[1].contains("A fifth line"), "{}", pages[1]);
    }

    #[test]
    fn long_text_is_cut_and_foreign_letters_are_marked() {
        let mut long = label(1);
        long.title = "Déchets de bois ".repeat(20);
        long.lines = vec!["東京 Ōsaka".to_owned(), "W".repeat(200)];
        let pdf = sheet(&[long], "Labels").unwrap();
        let text = &pages_text(&pdf)[0];
        let title = text.lines().find(|line| line.starts_with("Déchets")).expect("the title");
        assert!(title.starts_with("Déchets de bois Déch") && title.ends_with('…'), "{title}");
        assert!(title.chars().count() < 40, "{title}");
        assert!(text.contains("?? ?saka"), "{text}");
        let wide = text.lines().find(|line| line.starts_with("WWW")).expect("the line of W");
        assert!(wide.ends_with('…') && wide.chars().count() < 40, "{wide}");
    }

    #[test]
    fn cut_text_fits_its_width() {
        for value in
            ["", "Palettes", "Déchets de bois ".repeat(20).as_str(), &"W".repeat(100), &"i".repeat(500)]
        {
            for font in [Font::Regular, Font::Bold] {
                let width_em = 20_000.0;
                let fitted = fit(value, font, width_em);
                let width: f32 = fitted.iter().map(|byte| f32::from(font.width(*byte))).sum();
                assert!(width <= width_em, "{value:?}: {width}");
                if fitted.last() != Some(&ELLIPSIS) {
                    assert_eq!(fitted.len(), value.chars().count(), "{value:?} whole");
                }
            }
        }
        assert_eq!(fit("Straße €5 Œuvre\tfin", Font::Regular, 1e6), b"Stra\xdfe \x805 \x8cuvre fin");
        assert_eq!(fit("東京", Font::Regular, 1e6), b"??");
        assert_eq!(fit("ab cd", Font::Regular, 2_400.0), b"ab\x85", "no space before the ellipsis");
    }

    #[test]
    fn the_code_drawn_reads_back_as_the_url() {
        let label = label(7);
        let pdf = sheet(std::slice::from_ref(&label), "Labels").unwrap();
        let read = lopdf::Document::load_mem(&pdf).unwrap();
        let page_id = *read.get_pages().values().next().unwrap();
        let content = lopdf::content::Content::decode(&read.get_page_content(page_id)).unwrap();
        // The modules are the small rectangles; the clip and the border are the label's size.
        let modules: Vec<[f32; 4]> = content
            .operations
            .iter()
            .filter(|operation| operation.operator == "re")
            .map(|operation| {
                let value = |index: usize| operation.operands[index].as_float().unwrap();
                [value(0), value(1), value(2), value(3)]
            })
            .filter(|[_, _, _, height]| *height < mm(5.0))
            .collect();
        assert!(!modules.is_empty());
        let left_pt = modules.iter().map(|[x, ..]| *x).fold(f32::MAX, f32::min);
        let right_pt = modules.iter().map(|[x, _, width, _]| x + width).fold(f32::MIN, f32::max);
        let top_pt = modules.iter().map(|[_, y, _, height]| y + height).fold(f32::MIN, f32::max);
        let code_mm = (right_pt - left_pt) / PT_PER_MM;
        assert!(code_mm >= 25.0, "a code of {code_mm} mm");

        // Painted at 4 pixels a point with a white margin, as a camera would see it.
        let px_per_pt = 4.0;
        let margin_px = 40;
        let side_px = ((right_pt - left_pt) * px_per_pt) as usize + 2 * margin_px;
        let mut pixels = vec![255_u8; side_px * side_px];
        let to_px = |pt: f32| (pt * px_per_pt).round() as usize + margin_px;
        for [x, y, width, height] in modules {
            for row in to_px(top_pt - (y + height))..to_px(top_pt - y) {
                pixels[row * side_px + to_px(x - left_pt)..row * side_px + to_px(x + width - left_pt)]
                    .fill(0);
            }
        }
        let mut image =
            rqrr::PreparedImage::prepare_from_greyscale(side_px, side_px, |x, y| pixels[y * side_px + x]);
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one code");
        assert_eq!(grids[0].decode().unwrap().1, label.url);
    }

    #[test]
    fn the_code_is_large_enough_to_scan() {
        let smallest = qr::modules("x").unwrap().width();
        let code_mm = QR_BOX_MM * smallest as f32 / (smallest + 2 * QUIET_ZONE_MODULES) as f32;
        assert!(code_mm >= 25.0, "{code_mm} mm");
        let largest = qr::modules(&"x".repeat(qr::QR_TEXT_BYTES_MAX)).unwrap().width();
        let module_mm = QR_BOX_MM / (largest + 2 * QUIET_ZONE_MODULES) as f32;
        assert!(module_mm >= 0.33, "a module of {module_mm} mm still prints");
        // The label stock fills the page.
        let width_mm = SHEET_LEFT_MM * 2.0 + COLUMN_PITCH_MM + LABEL_WIDTH_MM;
        let height_mm = SHEET_TOP_MM * 2.0 + ROWS as f32 * LABEL_HEIGHT_MM;
        assert!((width_mm - PAGE_WIDTH_MM).abs() < 0.01 && (height_mm - PAGE_HEIGHT_MM).abs() < 0.01);
    }

    #[test]
    fn refusals_name_the_limit() {
        let error = sheet(&labels(LABELS_MAX + 1), "Labels").unwrap_err();
        assert_eq!(error, LabelError::TooMany { count: LABELS_MAX + 1 });
        assert_eq!(error.to_string(), "too many labels: 97, at most 96");
        assert_eq!(sheet(&[], "Labels").unwrap_err(), LabelError::Empty);
        let mut long = labels(3);
        long[2].url = "x".repeat(qr::QR_TEXT_BYTES_MAX + 1);
        let error = sheet(&long, "Labels").unwrap_err();
        assert_eq!(error.to_string(), "label 2 url: qr text too long: 513 bytes, at most 512");
    }
}

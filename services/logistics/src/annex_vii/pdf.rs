//! The printed lines of the document as a PDF: A4 pages, Helvetica (one of the fonts every PDF
//! reader has, so nothing is embedded), each box's first line in bold, long lines wrapped.
//!
//! The text is written in WinAnsiEncoding, the standard fonts' encoding: Latin-1 and the few
//! other letters of Western European names (`Œ`, `€`, typographic quotes). A character out of
//! it prints as `?`.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

/// A4, in points (1/72 inch).
const PAGE_WIDTH_PT: f32 = 595.0;
const PAGE_HEIGHT_PT: f32 = 842.0;
const MARGIN_PT: f32 = 50.0;
const FONT_SIZE_PT: f32 = 9.0;
const LEADING_PT: f32 = 12.0;
/// Longest line printed, in characters: Helvetica at 9 pt is about 5 pt a character on
/// average, and the page holds 495 pt between its margins.
const LINE_CHARS_MAX: usize = 100;
/// Lines on one page.
const PAGE_LINES_MAX: usize = ((PAGE_HEIGHT_PT - 2.0 * MARGIN_PT) / LEADING_PT) as usize;
/// Most pages of one document: the boxes hold a few hundred bytes of text each.
const PAGES_MAX: usize = 20;

const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// The PDF of `lines` under `title`. A line that starts with a box number (`12. `) is bold.
pub(super) fn render(title: &str, lines: &[String]) -> Vec<u8> {
    let wrapped: Vec<(bool, String)> = lines
        .iter()
        .flat_map(|line| {
            let heading = is_heading(line);
            wrap(line).into_iter().map(move |part| (heading, part))
        })
        .collect();
    let pages: Vec<&[(bool, String)]> = wrapped.chunks(PAGE_LINES_MAX).take(PAGES_MAX).collect();
    assert!(wrapped.len() <= PAGES_MAX * PAGE_LINES_MAX, "a document fits in {PAGES_MAX} pages");

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
    pdf.document_info(info_id).title(TextStr(title));
    for (page_lines, (page_id, content_id)) in pages.iter().zip(&page_ids) {
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH_PT, PAGE_HEIGHT_PT));
        page.parent(page_tree_id);
        page.contents(*content_id);
        page.resources().fonts().pair(REGULAR, regular_id).pair(BOLD, bold_id);
        page.finish();

        let mut content = Content::new();
        content.begin_text();
        content.set_leading(LEADING_PT);
        content.next_line(MARGIN_PT, PAGE_HEIGHT_PT - MARGIN_PT);
        for (heading, text) in page_lines.iter() {
            content.set_font(if *heading { BOLD } else { REGULAR }, FONT_SIZE_PT);
            content.show(Str(&win_ansi(text)));
            content.next_line_using_leading();
        }
        content.end_text();
        pdf.stream(*content_id, &content.finish());
    }
    pdf.finish()
}

/// `12. Declaration...`: a box's first line.
fn is_heading(line: &str) -> bool {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && line[digits..].starts_with(". ")
}

/// `line` cut at spaces into parts of at most `LINE_CHARS_MAX` characters (a word longer than
/// that is cut where it must), the parts after the first indented like the line.
fn wrap(line: &str) -> Vec<String> {
    if line.chars().count() <= LINE_CHARS_MAX {
        return vec![line.to_owned()];
    }
    let indent: String = line.chars().take_while(|character| *character == ' ').collect();
    let continued = format!("{indent}    ");
    let mut parts = Vec::new();
    let mut current = String::new();
    for word in line.split(' ').skip(indent.len()) {
        let needed = current.chars().count() + 1 + word.chars().count();
        if !current.is_empty() && needed > LINE_CHARS_MAX {
            parts.push(std::mem::take(&mut current));
        }
        if current.is_empty() {
            let prefix = if parts.is_empty() { indent.as_str() } else { continued.as_str() };
            current.push_str(prefix);
        } else {
            current.push(' ');
        }
        current.push_str(word);
        while current.chars().count() > LINE_CHARS_MAX {
            let cut: String = current.chars().take(LINE_CHARS_MAX).collect();
            let rest: String = current.chars().skip(LINE_CHARS_MAX).collect();
            parts.push(cut);
            current = format!("{continued}{rest}");
        }
    }
    if !current.trim().is_empty() {
        parts.push(current);
    }
    parts
}

/// `text` in WinAnsiEncoding (Windows-1252), as every PDF of the platform writes it
/// ([`symbiose_web::labels::win_ansi`]).
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars().map(symbiose_web::labels::win_ansi).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_wrap_at_spaces_and_keep_their_indent() {
        let line = format!("   Address: {}", "Hafenstraße 1, ".repeat(12));
        let parts = wrap(&line);
        assert!(parts.len() > 1, "{parts:?}");
        assert!(parts.iter().all(|part| part.chars().count() <= LINE_CHARS_MAX), "{parts:?}");
        assert!(parts[0].starts_with("   Address: "), "{parts:?}");
        assert!(parts[1..].iter().all(|part| part.starts_with("       ")), "{parts:?}");
        let words = |text: &str| text.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(words(&parts.join(" ")), words(&line), "no word lost");
        let unbroken = "x".repeat(2 * LINE_CHARS_MAX + 5);
        assert_eq!(wrap(&unbroken).concat().replace(' ', ""), unbroken);
    }

    #[test]
    fn text_is_written_in_win_ansi() {
        assert_eq!(win_ansi("Straße €5 Œuvre"), b"Stra\xdfe \x805 \x8cuvre");
        assert_eq!(win_ansi("東京"), b"??");
        assert!(is_heading("12. Declaration") && !is_heading("   (i) Basel") && !is_heading("2026-09-21"));
    }
}

//! Text made safe to put into HTML, in an element's content or a quoted attribute value.

/// `text` with `&`, `<`, `>`, `"` and `'` replaced by their character references, so that it
/// reads as text wherever it is put in a page (element content, a single- or double-quoted
/// attribute), never as markup.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// Appends `text` escaped to `out`, as `escape` does: pages are built into one buffer.
pub fn escape_into(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(position) = rest.find(['&', '<', '>', '"', '\'']) {
        out.push_str(&rest[..position]);
        out.push_str(match rest.as_bytes()[position] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&#39;",
        });
        rest = &rest[position + 1..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_are_escaped() {
        assert_eq!(
            escape(r#"<a href="x" title='y'>Tom & Jerry</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;Tom &amp; Jerry&lt;/a&gt;"
        );
        assert_eq!(escape("&amp;"), "&amp;amp;", "escaped text is escaped again");
    }

    #[test]
    fn other_text_is_kept() {
        assert_eq!(escape(""), "");
        assert_eq!(escape("Bois de palette, Straße 12 — 50 %"), "Bois de palette, Straße 12 — 50 %");
        assert_eq!(escape("é<ü>"), "é&lt;ü&gt;");
    }

    #[test]
    fn escaping_appends() {
        let mut out = String::from("<p>");
        escape_into(&mut out, "1 < 2");
        out.push_str("</p>");
        assert_eq!(out, "<p>1 &lt; 2</p>");
    }
}

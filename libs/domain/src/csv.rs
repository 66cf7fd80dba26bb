//! A minimal reader for the CSV tables compiled into the crate.
//!
//! The tables are ours and fixed at build time, so a malformed table is a programmer error: the
//! reader panics with the reason, and every table is loaded by a unit test, so such a panic can
//! only ever happen in `cargo test`, never in a running service.

/// Splits `text` into records of fields, checks the header row against `header`, and returns the
/// data rows. Fields borrow from `text`; a quoted field with doubled quotes is unescaped into a
/// leaked string, which happens at most once per field because callers load each table once.
pub(crate) fn parse(text: &'static str, header: &[&str]) -> Vec<Vec<&'static str>> {
    let mut records = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (record, after) = parse_record(rest);
        rest = after;
        // A trailing newline or a blank line yields one empty field: it is not a record.
        if record.len() == 1 && record[0].is_empty() {
            continue;
        }
        records.push(record);
    }
    assert!(!records.is_empty(), "csv table has no header row");
    let found_header = records.remove(0);
    assert_eq!(found_header, header, "csv table has an unexpected header row");
    for (index, record) in records.iter().enumerate() {
        assert_eq!(
            record.len(),
            header.len(),
            "csv record {} has {} fields instead of {}",
            index + 1,
            record.len(),
            header.len()
        );
    }
    records
}

/// Reads one record and returns it with the text after its line end.
fn parse_record(input: &'static str) -> (Vec<&'static str>, &'static str) {
    let mut fields = Vec::new();
    let mut rest = input;
    loop {
        let (field, after) = match rest.strip_prefix('"') {
            Some(quoted) => parse_quoted(quoted),
            None => {
                let end = rest.find([',', '\r', '\n']).unwrap_or(rest.len());
                (&rest[..end], &rest[end..])
            }
        };
        fields.push(field);
        if let Some(next_field) = after.strip_prefix(',') {
            rest = next_field;
            continue;
        }
        if after.is_empty() {
            return (fields, after);
        }
        let next_record = after
            .strip_prefix("\r\n")
            .or_else(|| after.strip_prefix('\n'))
            .unwrap_or_else(|| panic!("csv field is followed by {after:.20?} instead of a separator"));
        return (fields, next_record);
    }
}

/// Reads a quoted field whose opening quote is already consumed.
fn parse_quoted(input: &'static str) -> (&'static str, &'static str) {
    let mut search_from = 0;
    let mut has_doubled_quotes = false;
    loop {
        let close = match input[search_from..].find('"') {
            Some(offset) => search_from + offset,
            None => panic!("csv quoted field is not terminated"),
        };
        if input[close + 1..].starts_with('"') {
            has_doubled_quotes = true;
            search_from = close + 2;
            continue;
        }
        let raw = &input[..close];
        let field: &'static str =
            if has_doubled_quotes { Box::leak(raw.replace("\"\"", "\"").into_boxed_str()) } else { raw };
        return (field, &input[close + 1..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_and_quoted_fields() {
        let rows = parse("a,b,c\n1,\"x, y\",\"say \"\"hi\"\"\"\r\n2,,\"\"\n", &["a", "b", "c"]);
        assert_eq!(rows, vec![vec!["1", "x, y", "say \"hi\""], vec!["2", "", ""]]);
    }

    #[test]
    fn reads_a_table_without_final_newline() {
        let rows = parse("a,b\n1,2", &["a", "b"]);
        assert_eq!(rows, vec![vec!["1", "2"]]);
    }
}

//! Echoing untrusted input back in error messages, within a bound. Public so that the services'
//! edges quote what a caller sent the same way the value types do.

/// Error messages quote what the caller sent so that a person can see what is wrong, but a
/// caller can send megabytes: only this many characters are quoted.
pub const INPUT_ECHO_CHARS_MAX: usize = 40;

/// The input as quoted in an error message: at most `INPUT_ECHO_CHARS_MAX` characters, with an
/// ellipsis when cut.
pub fn echo(input: &str) -> String {
    match input.char_indices().nth(INPUT_ECHO_CHARS_MAX) {
        Some((cut, _)) => format!("{}...", &input[..cut]),
        None => input.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_echoed_whole_and_long_input_is_cut() {
        assert_eq!(echo("abc"), "abc");
        let long = "é".repeat(INPUT_ECHO_CHARS_MAX + 5);
        let echoed = echo(&long);
        assert_eq!(echoed.chars().count(), INPUT_ECHO_CHARS_MAX + 3);
        assert!(echoed.ends_with("..."));
    }
}

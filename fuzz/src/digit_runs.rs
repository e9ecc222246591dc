//! Long digit runs, the shape of card numbers, as the reason checks see them.

/// The digit runs of `text`, read through single separators (` `, `-`, `.`, `_`, `/`)
/// so that a PAN written in groups (`4405 6397 0401 5096`) is one run.
pub fn digit_runs(text: &str) -> Vec<String> {
    let mut runs = Vec::new();
    let mut run = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            run.push(c);
            continue;
        }
        let joins = matches!(c, ' ' | '-' | '.' | '_' | '/')
            && !run.is_empty()
            && chars.peek().is_some_and(char::is_ascii_digit);
        if !joins && !run.is_empty() {
            runs.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// Panics if `message` holds 12 digits in a row (through separators) that also stand
/// in a row in `input`: the shortest PAN, echoed.
pub fn assert_quotes_no_long_run(message: &str, input: &str) {
    const PAN_MIN: usize = 12;
    let haystack = digit_runs(input);
    for run in digit_runs(message).iter().filter(|r| r.len() >= PAN_MIN) {
        for window in run.as_bytes().windows(PAN_MIN) {
            let window = std::str::from_utf8(window).expect("ASCII digits");
            assert!(
                !haystack.iter().any(|h| h.contains(window)),
                "the message echoes the input's digits {window}: {message:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_read_through_single_separators() {
        assert_eq!(
            digit_runs("a 4405 6397-04.01 x 12  34"),
            ["440563970401", "12", "34"]
        );
    }
}

//! Provider accounts as commands and configuration name them.

/// The account a command uses when it names none.
pub const DEFAULT_ACCOUNT: &str = "default";

/// [`valid_account`] as a JSON Schema pattern.
pub const ACCOUNT_PATTERN: &str = "^[a-z0-9_-]{1,64}$";

/// An account name as configuration spells it (an environment variable part, too).
pub fn valid_account(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

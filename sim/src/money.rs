//! Amounts in the units each document defines, read without floats.
//!
//! ECommPay Gate: "amount—payout amount in the currency minor units" (HomeBank), a JSON
//! integer. Halyk epay: "Amount | Payment amount in the currency specified in the
//! currency field" — decimal currency units (`"amount": 12.22` in the status answer),
//! sent as a JSON number or, in the token form, as text.

use serde_json::Value;

/// Digits after the decimal point of the currencies the simulated methods take
/// (ISO 4217).
pub fn exponent(currency: &str) -> Option<u32> {
    matches!(currency, "KZT" | "USD" | "EUR" | "RUB" | "INR").then_some(2)
}

/// A Gate amount: a positive JSON integer of minor units (`100.0`, `"100"` and
/// negative numbers are refused).
pub fn gate_minor(v: &Value) -> Option<u64> {
    v.as_u64().filter(|a| *a > 0)
}

/// An epay decimal amount (`"100"`, `"12.22"`, `12.5`) as minor units of `currency`.
/// Refuses signs, exponents, more decimals than the currency has (unless zeros), and
/// anything that is not a plain decimal.
pub fn epay_minor(text: &str, currency: &str) -> Option<u64> {
    let exp = exponent(currency)?;
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || !digits(whole)
        || !digits(frac)
        || (text.contains('.') && frac.is_empty())
    {
        return None;
    }
    let (kept, rest) = frac.split_at(frac.len().min(exp as usize));
    if rest.bytes().any(|b| b != b'0') {
        return None;
    }
    let mut minor: u64 = whole.parse().ok()?;
    for _ in 0..exp {
        minor = minor.checked_mul(10)?;
    }
    let mut fraction: u64 = if kept.is_empty() {
        0
    } else {
        kept.parse().ok()?
    };
    for _ in kept.len()..exp as usize {
        fraction *= 10;
    }
    minor.checked_add(fraction)
}

/// An epay amount from JSON: a number (its literal text) or a string.
pub fn epay_minor_json(raw: &serde_json::value::RawValue, currency: &str) -> Option<u64> {
    let text = raw.get().trim();
    let text = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => inner,
        None => text,
    };
    epay_minor(text, currency)
}

/// Minor units as the decimal text epay shows (`1222` → `12.22`, `1000` → `10`).
pub fn epay_decimal_text(minor: u64, currency: &str) -> String {
    let exp = exponent(currency).unwrap_or(2);
    let unit = 10u64.pow(exp);
    let (whole, frac) = (minor / unit, minor % unit);
    if frac == 0 {
        whole.to_string()
    } else {
        let f = format!("{frac:0width$}", width = exp as usize);
        format!("{whole}.{}", f.trim_end_matches('0'))
    }
}

/// Minor units as a JSON number in currency units, as epay's answers show them.
pub fn epay_json(minor: u64, currency: &str) -> Value {
    serde_json::from_str(&epay_decimal_text(minor, currency)).unwrap_or(Value::Null)
}

/// Minor units as text with two decimals, for pages (`150000` → `1500.00`).
pub fn display(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn epay_amounts_read_exactly() {
        assert_eq!(epay_minor("100", "KZT"), Some(10000));
        assert_eq!(epay_minor("12.22", "KZT"), Some(1222));
        assert_eq!(epay_minor("12.2", "KZT"), Some(1220));
        assert_eq!(epay_minor("12.220", "KZT"), Some(1222));
        assert_eq!(epay_minor("0.01", "KZT"), Some(1));
        for bad in ["", ".5", "1.", "-1", "1e2", "12.221", "1,5", " 1", "+1"] {
            assert_eq!(epay_minor(bad, "KZT"), None, "{bad}");
        }
        assert_eq!(epay_minor("1", "XXX"), None);
        assert_eq!(epay_minor("184467440737095520", "KZT"), None);
    }

    #[test]
    fn epay_json_amounts_are_numbers_or_strings() {
        let raw = |s: &str| serde_json::value::RawValue::from_string(s.to_owned()).expect("raw");
        assert_eq!(epay_minor_json(&raw("12.22"), "KZT"), Some(1222));
        assert_eq!(epay_minor_json(&raw("\"100\""), "KZT"), Some(10000));
        assert_eq!(epay_minor_json(&raw("true"), "KZT"), None);
        assert_eq!(epay_minor_json(&raw("1.0e2"), "KZT"), None);
    }

    #[test]
    fn epay_amounts_are_shown_in_currency_units() {
        assert_eq!(epay_decimal_text(1222, "KZT"), "12.22");
        assert_eq!(epay_decimal_text(1220, "KZT"), "12.2");
        assert_eq!(epay_decimal_text(20000, "KZT"), "200");
        assert_eq!(epay_json(1222, "KZT"), json!(12.22));
        assert_eq!(epay_json(20000, "KZT"), json!(200));
    }

    #[test]
    fn gate_amounts_are_positive_integers() {
        assert_eq!(gate_minor(&json!(3000000)), Some(3000000));
        for bad in [json!(0), json!(-5), json!(100.0), json!("100"), json!(null)] {
            assert_eq!(gate_minor(&bad), None, "{bad}");
        }
    }
}

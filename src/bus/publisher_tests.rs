//! The publisher's pure parts: expiries, marks, and what a dead letter keeps.

use super::*;

#[test]
fn expiry_stays_within_its_rung() {
    for _ in 0..200 {
        let early = Expiry::Early.ms(1000);
        assert!((800..=1000).contains(&early), "{early}");
        let spread = Expiry::Spread {
            from: 1000,
            spread: 500,
        }
        .ms(2000);
        assert!((1000..=1500).contains(&spread), "{spread}");
    }
    assert_eq!(Expiry::Exact(700).ms(1000), 700);
    assert_eq!(Expiry::Exact(7000).ms(1000), 1000);
    assert!(
        Expiry::Spread {
            from: 900,
            spread: 500
        }
        .ms(1000)
            <= 1000
    );
}

#[test]
fn a_dead_letter_keeps_no_header_that_looks_like_a_pan_nor_any_too_large() {
    let mut from = DeliveryInfo::default();
    from.continue_trace("00-abc-def-01".into());
    // A card number (Visa's well-known test one), built so that none stands in src/.
    let pan = format!("4{}", "1".repeat(15));
    let grouped = |sep: &str| {
        let groups: Vec<&str> = (0..4).map(|i| &pan[i * 4..i * 4 + 4]).collect();
        groups.join(sep)
    };
    let mut nested = FieldTable::default();
    nested.insert("n".into(), header_text(&grouped("-")));
    let number = pan.parse::<i64>().expect("16 digits");
    for (name, value) in [
        (
            "x-note".to_owned(),
            header_text(&format!("card {}", grouped(" "))),
        ),
        (format!("x-{pan}"), AMQPValue::Boolean(true)),
        ("x-nested".to_owned(), AMQPValue::FieldTable(nested)),
        ("x-number".to_owned(), AMQPValue::LongLongInt(number)),
        ("x-ok".to_owned(), header_text("order 42")),
    ] {
        from.headers.insert(name.into(), value);
    }
    from.headers_len = super::super::table_len(&from.headers);
    let kept = dead_letter_headers(&from, from.headers_len);
    let names: Vec<_> = kept.inner().keys().map(|k| k.as_str()).collect();
    assert_eq!(names, ["traceparent", "x-ok"]);
    let kept = dead_letter_headers(&from, from.headers_len - 1);
    let names: Vec<_> = kept.inner().keys().map(|k| k.as_str()).collect();
    assert_eq!(names, ["traceparent"]);
}

#[test]
fn marks_add_to_the_headers_the_command_came_with() {
    let mut from = DeliveryInfo::default();
    from.continue_trace("00-abc-def-01".into());
    from.deferrals = 2;
    let h = Marks {
        check_back: true,
        deferred_announced: true,
        rate_deferral: true,
        rate_ticket: Some(42),
    }
    .on(&from);
    let get = |k: &str| h.inner().get(k).cloned();
    assert_eq!(get(headers::CHECK_BACK), Some(AMQPValue::Boolean(true)));
    assert_eq!(get(headers::DEFERRED), Some(AMQPValue::Boolean(true)));
    assert_eq!(get(headers::DEFERRALS), Some(AMQPValue::LongLongInt(3)));
    assert_eq!(get(headers::RATE_TICKET), Some(AMQPValue::LongLongInt(42)));
    assert!(get(headers::TRACEPARENT).is_some());
    let plain = Marks::default().on(&from);
    assert_eq!(plain.inner().len(), 1, "only what it came with");
}

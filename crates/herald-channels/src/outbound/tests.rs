use super::*;

fn refused(url: &str) -> bool {
    matches!(
        check_url(&Guard::default(), url),
        Err(Refusal::Forbidden(_))
    )
}

#[test]
fn private_and_special_addresses_are_refused_in_every_spelling() {
    for url in [
        "http://127.0.0.1/",
        "http://2130706433/",
        "http://0x7f.0.0.1/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "http://[::1]/",
        "http://[::]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[fc00::1]/",
        "http://[fe80::1]/",
        "http://[ff02::1]/",
    ] {
        assert!(refused(url), "{url} must be refused");
    }
}

#[test]
fn public_addresses_and_names_pass_the_literal_check() {
    for url in [
        "https://93.184.216.34/hook",
        "https://[2606:4700::1111]/",
        "https://hooks.example.com/x",
    ] {
        assert!(check_url(&Guard::default(), url).is_ok(), "{url}");
    }
    assert_eq!(
        check_url(&Guard::default(), "ftp://example.com/"),
        Err(Refusal::BadUrl)
    );
}

#[test]
fn the_allow_list_opens_exactly_its_ranges() {
    let guard = Guard::new(vec!["127.0.0.0/8".parse().unwrap()]);
    assert!(check_url(&guard, "http://127.0.0.1:9000/").is_ok());
    assert!(check_url(&guard, "http://10.0.0.1/").is_err());
}

#[test]
fn answers_are_classified_like_standard_webhooks_says() {
    let answer = |status| Answer {
        status,
        headers: HeaderMap::new(),
    };
    assert!(matches!(
        classify(&answer(204)),
        DeliveryOutcome::Delivered { .. }
    ));
    assert!(matches!(
        classify(&answer(503)),
        DeliveryOutcome::Retryable {
            status: Some(503),
            ..
        }
    ));
    assert!(matches!(
        classify(&answer(429)),
        DeliveryOutcome::Retryable { .. }
    ));
    assert!(matches!(
        classify(&answer(302)),
        DeliveryOutcome::Permanent { .. }
    ));
    assert!(matches!(
        classify(&answer(400)),
        DeliveryOutcome::Permanent {
            status: Some(400),
            ..
        }
    ));
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", "7".parse().unwrap());
    assert!(matches!(
        classify(&Answer {
            status: 503,
            headers
        }),
        DeliveryOutcome::Retryable {
            after_ms: Some(7000),
            ..
        }
    ));
}

use super::*;

const RSA_PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCZtxuNf+ie3I5P\nIqMobyB4rYlwpoFNL9SKBaCaZ/pQAmENSHXxuex40GFydhbH1kEgXhZMqNTykzaY\nJD1tlzxCz0xZxOxceybkIMrB+WmcqoMpLcc/21ztsxvArZHZZT/xyajjPUbd+rec\nwsa/FriCv2aWOs0fSb8SYSp/v97aiMRte8zeKykDUtohXoDIck0oqxNyGnBK0e56\nPXB8ZzJXaEWUp92021f2PitsXxTpjc+OkDYlMOjhcMYoTIxoYW5FLLNy3xz0bRJb\nDnyjS9HXSHnFrwLrhbEYpjysvSmkjvk0WvWGa+TAn3RpyCHvexdKgMuEoQPNLe6J\nQPIWyAxjAgMBAAECggEAGAzsRLF0phaANaWHvbXVcMxGKtgCdx86s/W5cS8/nPEi\nWj+yJIYgl66S8KPFYLMHMZdHCeuIlgOukRNqgREenp1spscG7FlgdmUjFEJ/4cFU\nEEdXW4ho+9AAUZ9WqJsM7DnPMO7Pfb/SprZa/l8Bs4Na+7pria+yM5/8VEyjA7IQ\nUz+dacjTFyuw9zKl3mbG3dpStV4hnSUl6Xnv/vDSWG5KJIA1Uow0cjVTLOaYYpua\nrJ0yON1v/rJt6tzibtLa58TdQ78hCQVGFkrzeJR3IhdgeuwG+qVBgsh3LFY3P25L\niWu/i392ZkE1RMvpZPfjlXJpY3crKf5WxauHnPrlEQKBgQDQWfiDT5rleQm4aF7D\nI60JBWiPIzNJH/M43MHjSw0/gW8lDHhq/qNm/cA2cfXpi79By+WXfCmz8QU4mCJ7\nVZ6spdrdK+2ugRxcSB4YqDHqEcvm/UHS6uLuSLHqpPTOSdIWjiqmt8QnnCJ8BZWX\nNirE4XcIu7raSmyGwoR/ExxI1QKBgQC83m/Y7QdHfCKuTudY9H7UrKRrQA1gTrOx\nGxCPnhUPg+thrFPAvHjHHhipLRjlobbaplvBtfgOVqtzRExJmnFsn3moH/yL9NSa\nbDDogurG5wcrarElplp0t9aDJKiPirvQCB9oJDaL0SlyRk8MUx8TUCwX0lJ/kGY1\n/oCZWWQcVwKBgQC7Xn3v0NIS1cPZE/tMcDP3bea2+sfvVg1MMLMoreDvIH6Miedt\nCSx3vXFzRQ8KhYNtL2l8zstOKE0ytRYlZj05NDpcNlocWb3ge3adY/znbDO7ujvM\n6zFDaxqdUtVZAugtIpLWtWJw4KfecsMxZiQWRFDhCLqj/tQUaK/w+4WvNQKBgF08\nrhh3wu0uQeys9RZ79JTG+ZAcmb3efGTFCKLtllYHeM7KBLqUEEez+tahdbX+5EcC\ncy+oxmFFtfP8VnDLdoz6GVO/Hqx02/Ozz10pK/+vE2IClJsSiXsvOg2ZrkDWaysi\np2aA4hCZ3A0W2nUqH6AoJuxHnwRsY5jqH9AUShCXAoGAI2Zjh4mu3D9DQ+EzM0Er\nphtIi3iw9cy0SE1vGRiMz0PNHtAaX88rj37NPBTuNkltIZ2YoQXDrbPHXTcioCXN\nr1z0PWNro/cEAP7qa9nQ1XZPI8vlbOQ/ltyS2Wd44F4hXn6rgLUxg1sYJ3Ph7LsT\nHyjNyofsZy95eQNnxd94avs=\n-----END PRIVATE KEY-----\n";
const RSA_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAmbcbjX/ontyOTyKjKG8g\neK2JcKaBTS/UigWgmmf6UAJhDUh18bnseNBhcnYWx9ZBIF4WTKjU8pM2mCQ9bZc8\nQs9MWcTsXHsm5CDKwflpnKqDKS3HP9tc7bMbwK2R2WU/8cmo4z1G3fq3nMLGvxa4\ngr9mljrNH0m/EmEqf7/e2ojEbXvM3ispA1LaIV6AyHJNKKsTchpwStHuej1wfGcy\nV2hFlKfdtNtX9j4rbF8U6Y3PjpA2JTDo4XDGKEyMaGFuRSyzct8c9G0SWw58o0vR\n10h5xa8C64WxGKY8rL0ppI75NFr1hmvkwJ90acgh73sXSoDLhKEDzS3uiUDyFsgM\nYwIDAQAB\n-----END PUBLIC KEY-----\n";

fn account() -> ServiceAccount {
    serde_json::from_value(serde_json::json!({
        "type": "service_account",
        "project_id": "demo-project",
        "client_email": "herald@demo-project.iam.gserviceaccount.com",
        "private_key": RSA_PEM,
        "private_key_id": "key-1",
        "token_uri": "http://127.0.0.1:9/token",
    }))
    .unwrap()
}

#[test]
fn the_assertion_is_rs256_with_kid_and_googles_claims() {
    let now = time::macros::datetime!(2026-11-23 10:00 UTC);
    let jwt = assertion(&account(), now).unwrap();
    let header = jsonwebtoken::decode_header(&jwt).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), Some("key-1"));
    let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.set_audience(&["http://127.0.0.1:9/token"]);
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(RSA_PUBLIC_PEM.as_bytes()).unwrap();
    let claims = jsonwebtoken::decode::<serde_json::Value>(&jwt, &key, &validation)
        .unwrap()
        .claims;
    let iat = now.unix_timestamp();
    assert_eq!(
        claims,
        serde_json::json!({"iss": "herald@demo-project.iam.gserviceaccount.com", "scope": SCOPE,
            "aud": "http://127.0.0.1:9/token", "iat": iat, "exp": iat + 3600})
    );
}

#[test]
fn a_bad_key_is_a_permanent_configuration_error() {
    let mut a = account();
    a.private_key = "nope".into();
    let now = OffsetDateTime::now_utc();
    assert!(matches!(
        assertion(&a, now),
        Err(DeliveryOutcome::Permanent { reason, .. }) if reason.contains("fcm.service_account.private_key")
    ));
}

#[test]
fn tokens_are_replaced_a_minute_early_or_at_half_their_life() {
    let t = time::macros::datetime!(2026-11-23 10:00 UTC);
    assert_eq!(refresh_at(t, 3599), t + Duration::seconds(3539));
    assert_eq!(refresh_at(t, 60), t + Duration::seconds(30));
    assert_eq!(refresh_at(t, 0), t);
}

#[test]
fn the_access_token_never_prints() {
    let token = AccessToken {
        value: "ya29.secret".into(),
        refresh_at: OffsetDateTime::UNIX_EPOCH,
    };
    assert!(!format!("{token:?}").contains("secret"));
}

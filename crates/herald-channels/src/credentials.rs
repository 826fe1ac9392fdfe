//! An app's channel sections checked with the channels' own parsers: key material the
//! engine's validation cannot read without crypto, connector templates, SMTP addresses. The
//! app service runs this before an app is stored, so a bad key is a 422 with its field path,
//! not a failed push later.

use herald_engine::app::AppConfig;
use herald_engine::validate::Invalid;

/// Checks key material the engine cannot parse without crypto.
pub fn check(config: &AppConfig) -> Result<(), Invalid> {
    check_connector(config)?;
    check_apns(config)?;
    check_fcm(config)?;
    check_smtp(config)?;
    check_webpush(config)
}

fn check_connector(config: &AppConfig) -> Result<(), Invalid> {
    if let Some(template) = config.connector.as_ref().and_then(|c| c.template.as_ref()) {
        crate::connector::template::validate(template).map_err(|e| {
            Invalid::new(
                herald_engine::validate::join_path("connector.template", &e.path),
                e.message,
            )
        })?;
    }
    Ok(())
}

fn check_apns(config: &AppConfig) -> Result<(), Invalid> {
    if let Some(apns) = &config.apns
        && jsonwebtoken::EncodingKey::from_ec_pem(apns.private_key.as_bytes()).is_err()
    {
        return Err(Invalid::new(
            "apns.private_key",
            "must be the .p8 PKCS#8 PEM of a P-256 key",
        ));
    }
    Ok(())
}

fn check_fcm(config: &AppConfig) -> Result<(), Invalid> {
    if let Some(fcm) = &config.fcm
        && jsonwebtoken::EncodingKey::from_rsa_pem(fcm.service_account.private_key.as_bytes())
            .is_err()
    {
        return Err(Invalid::new(
            "fcm.service_account.private_key",
            "must be an RSA private key in PEM",
        ));
    }
    Ok(())
}

fn check_smtp(config: &AppConfig) -> Result<(), Invalid> {
    if let Some(smtp) = &config.smtp
        && smtp.from.parse::<lettre::message::Mailbox>().is_err()
    {
        return Err(Invalid::new(
            "smtp.from",
            "must be an address such as chat@example.com or \"Chat\" <chat@example.com>",
        ));
    }
    Ok(())
}

fn check_webpush(config: &AppConfig) -> Result<(), Invalid> {
    let Some(webpush) = &config.webpush else {
        return Ok(());
    };
    let Some(private) = &webpush.vapid_private_key else {
        return Ok(());
    };
    let public = crate::webpush::public_key_of(private).map_err(|_| {
        Invalid::new(
            "webpush.vapid_private_key",
            "must be a base64url 32-byte P-256 private key",
        )
    })?;
    if webpush
        .vapid_public_key
        .as_ref()
        .is_some_and(|p| p.trim_end_matches('=') != public)
    {
        return Err(Invalid::new(
            "webpush.vapid_public_key",
            "is not the public key of vapid_private_key (leave it out: Herald derives it)",
        ));
    }
    Ok(())
}

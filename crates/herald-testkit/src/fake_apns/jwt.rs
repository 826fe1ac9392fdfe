//! The provider token: an ES256 JWT checked like APNs does, cached per token.

use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use super::*;

impl Shared {
    pub(super) fn verify(&self, jwt: &str) -> Result<Verified, &'static str> {
        if let Some(known) = lock(&self.verified).get(jwt) {
            return known.clone();
        }
        let verified = self.verify_uncached(jwt);
        lock(&self.verified).insert(jwt.to_string(), verified.clone());
        verified
    }

    pub(super) fn verify_uncached(&self, jwt: &str) -> Result<Verified, &'static str> {
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| "InvalidProviderToken")?;
        if header.alg != Algorithm::ES256 {
            return Err("InvalidProviderToken");
        }
        let kid = header.kid.ok_or("InvalidProviderToken")?;
        if kid != self.key_id {
            return Err("InvalidProviderToken");
        }
        let mut validation = Validation::new(Algorithm::ES256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Value>(jwt, &self.decoding_key, &validation)
            .map_err(|_| "InvalidProviderToken")?
            .claims;
        if claims["iss"].as_str() != Some(self.team_id.as_str()) {
            return Err("InvalidProviderToken");
        }
        let iat = claims["iat"].as_i64().ok_or("InvalidProviderToken")?;
        Ok(Verified { kid, iat })
    }
}

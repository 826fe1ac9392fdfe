//! Addresses in logs and in SMTP servers' words: masked, never whole.

use herald_engine::notify::content::shorten;

/// `alice@example.com` → `a***@example.com`: enough to tell addresses apart in a log,
/// never the whole address.
pub fn mask(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

/// An SMTP server's words with every email address in them masked and at most `max` bytes.
pub fn redact(text: &str, max: usize) -> String {
    let masked: Vec<String> = text
        .split_whitespace()
        .map(|word| {
            if !word.contains('@') {
                return word.to_string();
            }
            let start = word
                .find(|c: char| !matches!(c, '<' | '(' | '[' | '"' | '\''))
                .unwrap_or(0);
            let end = word
                .rfind(|c: char| !matches!(c, '>' | ')' | ']' | '"' | '\'' | ',' | ';' | ':' | '.'))
                .map_or(word.len(), |i| {
                    i + word[i..].chars().next().map_or(1, char::len_utf8)
                });
            if start >= end {
                return word.to_string();
            }
            format!(
                "{}{}{}",
                &word[..start],
                mask(&word[start..end]),
                &word[end..]
            )
        })
        .collect();
    shorten(&masked.join(" "), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_masked_in_logs_and_server_replies() {
        assert_eq!(mask("alice@example.com"), "a***@example.com");
        assert_eq!(mask("nope"), "***");
        assert_eq!(
            redact("5.1.1 <bob@example.org>: Recipient address rejected", 200),
            "5.1.1 <b***@example.org>: Recipient address rejected"
        );
        assert_eq!(
            redact("user bob@example.org.", 200),
            "user b***@example.org."
        );
        assert!(redact(&"x".repeat(500), 100).len() <= 100);
    }
}

//! Identifiers shaped like Salesforce's, so clients that parse them (jsforce `parseIdUrl`,
//! sfdx-core's token regex `/(00D\w{12,15})![.\w]*/`) accept ours.

use super::env::Rng;
use super::secret::Secret;

/// Key prefixes of the record types we mint.
pub const ORG_PREFIX: &str = "00D";
pub const USER_PREFIX: &str = "005";

/// A new 18-character record id: 3-character key prefix, 12 random base62 characters, and the
/// 3-character case-safe suffix Salesforce appends to 15-character ids.
pub fn new_record_id(rng: &dyn Rng, prefix: &str) -> String {
    let body = Secret::random_base62(rng, 12);
    let id15 = format!("{prefix}{}", body.expose());
    let suffix = case_safe_suffix(&id15);
    format!("{id15}{suffix}")
}

/// The suffix that turns a case-sensitive 15-character id into the case-insensitive 18-character
/// form: one character per 5-character chunk, encoding which of its characters are upper case.
fn case_safe_suffix(id15: &str) -> String {
    const MAP: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    id15.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_ascii_uppercase())
                .fold(0usize, |acc, (i, _)| acc | (1 << i));
            MAP[bits] as char
        })
        .collect()
}

/// A consumer key (client id): `3MVG9` like Salesforce's, followed by 80 random characters.
pub fn new_consumer_key(rng: &dyn Rng) -> String {
    format!("3MVG9{}", Secret::random_base62(rng, 80).expose())
}

/// Whether a string has the shape of a record id with the given prefix (15 or 18 characters).
pub fn is_record_id(s: &str, prefix: &str) -> bool {
    (s.len() == 15 || s.len() == 18)
        && s.starts_with(prefix)
        && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::env::OsRng;

    #[test]
    fn suffix_matches_a_known_salesforce_id() {
        // A published example: 001A0000006Vm9r → 001A0000006Vm9rIAC.
        assert_eq!(case_safe_suffix("001A0000006Vm9r"), "IAC");
    }

    #[test]
    fn new_ids_have_salesforce_shape() {
        let org = new_record_id(&OsRng, ORG_PREFIX);
        assert!(is_record_id(&org, ORG_PREFIX), "{org}");
        assert_eq!(org.len(), 18);
        assert!(new_consumer_key(&OsRng).starts_with("3MVG9"));
    }
}

//! The fingerprint that tells one payment from another under the same key.

use super::card::{self, FingerprintKey};
use super::hex::hex;
use sha2::{Digest, Sha256};

/// SHA-256 of the command's canonical JSON: the same key with a different fingerprint
/// is a different payment and is refused.
///
/// Card data (PAN, expiry, CVC, holder name, Google Pay token) is replaced by its
/// HMAC under the fleet's [`FingerprintKey`] before hashing ([`card::keyed`]): a plain
/// SHA-256 over a body holding a PAN could be brute-forced back to the PAN (a PAN has
/// few unknown digits), and this fingerprint is stored in Redis. Keying only the card
/// fields, rather than the whole body, keeps every existing fingerprint (bodies
/// without card data) unchanged, so records made before the change still match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub(super) fn of(value: &serde_json::Value, key: &FingerprintKey) -> Self {
        // serde_json's map is ordered by key, so re-serialising gives one canonical form
        // whatever order or spacing the publisher used.
        let value = card::keyed(value, key);
        let canonical = serde_json::to_vec(&*value).expect("a Value always serialises");
        Fingerprint(hex(&Sha256::digest(&canonical)))
    }

    pub fn from_stored(s: String) -> Self {
        Fingerprint(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

//! Keyed pseudonyms: HMAC-SHA256 of the value, encoded as hex or base64 and
//! truncated. Deterministic for one key, so the same customer gets the same
//! pseudonym in every table and every day's load (joins keep working), and
//! without the key nobody can recompute a pseudonym from a guessed value
//! (unlike a plain hash, which a dictionary of ids reverses in seconds).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How a pseudonym is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Lower-case hex (4 bits per character).
    #[default]
    Hex,
    /// URL-safe base64 without padding (6 bits per character).
    Base64,
}

/// The shortest pseudonym accepted: 8 hex characters = 32 bits, beyond
/// which collisions within a few tens of thousands of values become likely.
pub const MIN_LENGTH: usize = 8;
/// Default length: 16 hex characters = 64 bits.
pub const DEFAULT_LENGTH: usize = 16;

/// Computes pseudonyms with one key.
#[derive(Clone)]
pub struct Pseudonymizer {
    // Keyed once; each value clones this state (the key's two blocks are
    // already absorbed, so a short value costs two SHA-256 blocks).
    mac: HmacSha256,
    encoding: Encoding,
    length: usize,
}

impl Pseudonymizer {
    /// `length`: characters kept of the encoded MAC (at most 64 for hex,
    /// 43 for base64).
    pub fn new(key: &[u8], encoding: Encoding, length: usize) -> Self {
        Self {
            mac: HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length"),
            encoding,
            length,
        }
    }

    /// The full HMAC-SHA256 of `value`.
    pub fn mac(&self, value: &[u8]) -> [u8; 32] {
        let mut m = self.mac.clone();
        m.update(value);
        m.finalize().into_bytes().into()
    }

    /// The MAC of several parts, each length-prefixed so that
    /// ("ab", "c") and ("a", "bc") differ.
    pub fn mac_parts<'a>(&self, parts: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
        let mut m = self.mac.clone();
        for p in parts {
            m.update(&(p.len() as u64).to_le_bytes());
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    /// Appends the pseudonym of `value` to `out`.
    pub fn write(&self, value: &[u8], out: &mut String) {
        self.encode(&self.mac(value), out)
    }

    pub fn pseudonym(&self, value: &str) -> String {
        let mut s = String::with_capacity(self.length);
        self.write(value.as_bytes(), &mut s);
        s
    }

    /// Encodes a MAC and truncates it to the configured length.
    pub fn encode(&self, mac: &[u8; 32], out: &mut String) {
        match self.encoding {
            Encoding::Hex => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                for (i, b) in mac.iter().enumerate() {
                    if 2 * i >= self.length {
                        break;
                    }
                    out.push(HEX[(b >> 4) as usize] as char);
                    if 2 * i + 1 < self.length {
                        out.push(HEX[(b & 15) as usize] as char);
                    }
                }
            }
            Encoding::Base64 => {
                let mut buf = [0u8; 44];
                let n = URL_SAFE_NO_PAD
                    .encode_slice(mac, &mut buf)
                    .expect("32 bytes fit in 44 characters");
                let keep = n.min(self.length);
                out.push_str(std::str::from_utf8(&buf[..keep]).expect("base64 is ASCII"));
            }
        }
    }

    /// The longest pseudonym an encoding can give.
    pub fn max_length(encoding: Encoding) -> usize {
        match encoding {
            Encoding::Hex => 64,
            Encoding::Base64 => 43,
        }
    }
}

/// Entries a [`Memo`] keeps before starting over (bounded memory).
pub const MEMO_MAX: usize = 1 << 16;

/// A pseudonymizer that remembers recent values: ids repeat on every line
/// of an order (Online Retail: 406,829 CustomerIDs, 4,372 distinct), and a
/// hash-map lookup is far cheaper than two SHA-256 blocks. The raw values
/// stay in memory only.
pub struct Memo<'a> {
    p: &'a Pseudonymizer,
    cache: std::collections::HashMap<Box<[u8]>, Box<str>>,
}

impl<'a> Memo<'a> {
    pub fn new(p: &'a Pseudonymizer) -> Self {
        Self {
            p,
            cache: std::collections::HashMap::new(),
        }
    }

    /// Appends the pseudonym of `value` to `out`.
    pub fn write(&mut self, value: &[u8], out: &mut String) {
        if let Some(s) = self.cache.get(value) {
            out.push_str(s);
            return;
        }
        let start = out.len();
        self.p.write(value, out);
        if self.cache.len() >= MEMO_MAX {
            self.cache.clear();
        }
        self.cache.insert(value.into(), out[start..].into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pii::unhex;

    fn hmac_hex(key: &[u8], data: &[u8], len: usize) -> String {
        let p = Pseudonymizer::new(key, Encoding::Hex, len);
        let mut s = String::new();
        p.write(data, &mut s);
        s
    }

    /// RFC 4231, test cases 1-7 (HMAC-SHA-256 outputs).
    #[test]
    fn rfc4231_vectors() {
        let cases: Vec<(Vec<u8>, Vec<u8>, &str)> = vec![
            (
                vec![0x0b; 20],
                b"Hi There".to_vec(),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 20],
                vec![0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
                vec![0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                vec![0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(),
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (key, data, want) in cases {
            assert_eq!(hmac_hex(&key, &data, 64), want);
        }
        // Test case 5: output truncated to 128 bits.
        assert_eq!(
            hmac_hex(&[0x0c; 20], b"Test With Truncation", 32),
            "a3b6167473100ee06e0c796c2955552b"
        );
    }

    #[test]
    fn truncation_odd_lengths_and_base64() {
        let full = hmac_hex(b"Jefe", b"what do ya want for nothing?", 64);
        assert_eq!(hmac_hex(b"Jefe", b"what do ya want for nothing?", 9), &full[..9]);
        let b = Pseudonymizer::new(b"Jefe", Encoding::Base64, 43);
        let mac = b.mac(b"what do ya want for nothing?");
        let mut s = String::new();
        b.encode(&mac, &mut s);
        assert_eq!(s, URL_SAFE_NO_PAD.encode(mac));
        let short = Pseudonymizer::new(b"Jefe", Encoding::Base64, 12).pseudonym("what do ya want for nothing?");
        assert_eq!(short, s[..12]);
    }

    #[test]
    fn memo_gives_the_same_pseudonyms() {
        let p = Pseudonymizer::new(b"0123456789abcdef", Encoding::Hex, 16);
        let mut m = Memo::new(&p);
        for v in ["17850", "13047", "17850", "", "17850"] {
            let mut s = String::from("x");
            m.write(v.as_bytes(), &mut s);
            assert_eq!(s, format!("x{}", p.pseudonym(v)));
        }
    }

    #[test]
    fn parts_are_unambiguous_and_key_matters() {
        let p = Pseudonymizer::new(b"k1-0123456789abcdef", Encoding::Hex, 16);
        assert_ne!(p.mac_parts([&b"ab"[..], b"c"]), p.mac_parts([&b"a"[..], b"bc"]));
        let q = Pseudonymizer::new(b"k2-0123456789abcdef", Encoding::Hex, 16);
        assert_ne!(p.pseudonym("17850"), q.pseudonym("17850"));
        assert_eq!(p.pseudonym("17850"), p.pseudonym("17850"));
    }
}

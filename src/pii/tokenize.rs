//! Reversible deterministic tokens: AES-SIV (RFC 5297). The same value
//! always gives the same token under one key (joins and group-bys keep
//! working), and `nightjar pii detokenize` turns a token back into the
//! value for whoever holds the key. SIV is misuse-resistant: determinism is
//! its designed mode, not a reused nonce.
//!
//! A token is `tok_` + URL-safe base64 (no padding) of the SIV tag (16
//! bytes) and the ciphertext (as long as the value).

use aes_siv::KeyInit;
use aes_siv::siv::{Aes128Siv, Aes256Siv};
use anyhow::{Result, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub const PREFIX: &str = "tok_";

enum Cipher {
    Aes128(Box<Aes128Siv>),
    Aes256(Box<Aes256Siv>),
}

/// Encrypts and decrypts tokens with one key.
pub struct Tokenizer {
    cipher: Cipher,
    /// Associated data bound into every token (an optional context such as
    /// a column domain: tokens of another context do not decrypt).
    context: Vec<u8>,
}

impl Tokenizer {
    /// `key`: 32 bytes (AES-128-SIV) or 64 bytes (AES-256-SIV).
    pub fn new(key: &[u8], context: &[u8]) -> Result<Self> {
        let cipher = match key.len() {
            32 => Cipher::Aes128(Box::new(Aes128Siv::new_from_slice(key).expect("32 bytes"))),
            64 => Cipher::Aes256(Box::new(Aes256Siv::new_from_slice(key).expect("64 bytes"))),
            n => bail!("an AES-SIV key is 32 or 64 bytes, not {n}"),
        };
        Ok(Self {
            cipher,
            context: context.to_vec(),
        })
    }

    /// A tokenizer from a master key of any length (AES-256-SIV, with a key
    /// derived for this purpose).
    pub fn from_master(master: &[u8], context: &str) -> Self {
        Self::new(&super::key::derive(master, "tokenize", 64), context.as_bytes()).expect("64-byte key")
    }

    /// The raw SIV output (tag || ciphertext).
    pub fn seal(&mut self, plaintext: &[u8]) -> Vec<u8> {
        let one = [self.context.as_slice()];
        let h: &[&[u8]] = if self.context.is_empty() { &[] } else { &one };
        let out = match &mut self.cipher {
            Cipher::Aes128(c) => c.encrypt(h, plaintext),
            Cipher::Aes256(c) => c.encrypt(h, plaintext),
        };
        out.expect("SIV encryption of a bounded value does not fail")
    }

    /// Opens raw SIV output; fails when the tag does not match (wrong key,
    /// wrong context or a damaged token).
    pub fn open(&mut self, sealed: &[u8]) -> Result<Vec<u8>> {
        let one = [self.context.as_slice()];
        let h: &[&[u8]] = if self.context.is_empty() { &[] } else { &one };
        let out = match &mut self.cipher {
            Cipher::Aes128(c) => c.decrypt(h, sealed),
            Cipher::Aes256(c) => c.decrypt(h, sealed),
        };
        out.map_err(|_| anyhow::anyhow!("the token does not decrypt with this key and context"))
    }

    pub fn token(&mut self, value: &str) -> String {
        let sealed = self.seal(value.as_bytes());
        let mut s = String::with_capacity(PREFIX.len() + sealed.len() * 4 / 3 + 4);
        s.push_str(PREFIX);
        URL_SAFE_NO_PAD.encode_string(&sealed, &mut s);
        s
    }

    pub fn detokenize(&mut self, token: &str) -> Result<String> {
        let body = token.trim().strip_prefix(PREFIX).unwrap_or(token.trim());
        let sealed = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| anyhow::anyhow!("not a token: expected `{PREFIX}` and URL-safe base64"))?;
        if sealed.len() < 16 {
            bail!("not a token: too short");
        }
        let plain = self.open(&sealed)?;
        String::from_utf8(plain).map_err(|_| anyhow::anyhow!("the token decrypts to bytes that are not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pii::unhex;

    /// RFC 5297 appendix A.1 (deterministic authenticated encryption).
    #[test]
    fn rfc5297_a1_deterministic() {
        let key = unhex("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
        let ad = unhex("101112131415161718191a1b1c1d1e1f2021222324252627");
        let mut t = Tokenizer::new(&key, &ad).unwrap();
        let pt = unhex("112233445566778899aabbccddee");
        let out = t.seal(&pt);
        assert_eq!(
            out,
            unhex("85632d07c6e8f37f950acd320a2ecc9340c02b9690c4dc04daef7f6afe5c")
        );
        assert_eq!(t.open(&out).unwrap(), pt);
    }

    /// RFC 5297 appendix A.2 (nonce-based: several headers, the nonce
    /// last), through the cipher directly since tokens take one context.
    #[test]
    fn rfc5297_a2_nonce_based() {
        let key = unhex("7f7e7d7c7b7a79787776757473727170404142434445464748494a4b4c4d4e4f");
        let mut c = Aes128Siv::new_from_slice(&key).unwrap();
        let headers = [
            unhex("00112233445566778899aabbccddeeffdeaddadadeaddadaffeeddccbbaa99887766554433221100"),
            unhex("102030405060708090a0"),
            unhex("09f911029d74e35bd84156c5635688c0"),
        ];
        let pt =
            unhex("7468697320697320736f6d6520706c61696e7465787420746f20656e6372797074207573696e67205349562d414553");
        let out = c.encrypt(&headers, &pt).unwrap();
        assert_eq!(
            out,
            unhex(
                "7bdb6e3b432667eb06f4d14bff2fbd0fcb900f2fddbe404326601965c889bf17dba77ceb094fa663b7a3f748ba8af829ea64ad544a272e9c485b62a3fd5c0d"
            )
        );
    }

    #[test]
    fn tokens_round_trip_and_are_deterministic() {
        let mut t = Tokenizer::from_master(b"a master key of enough length", "");
        let a = t.token("GB82 WEST 1234 5698 7654 32");
        assert!(a.starts_with(PREFIX));
        assert_eq!(a, t.token("GB82 WEST 1234 5698 7654 32"));
        assert_ne!(a, t.token("GB82 WEST 1234 5698 7654 33"));
        assert_eq!(t.detokenize(&a).unwrap(), "GB82 WEST 1234 5698 7654 32");
        let mut other = Tokenizer::from_master(b"another master key, also long", "");
        assert!(other.detokenize(&a).is_err());
        let mut ctx = Tokenizer::from_master(b"a master key of enough length", "iban");
        assert!(ctx.detokenize(&a).is_err());
        assert!(t.detokenize("tok_!!").is_err());
    }
}

//! Where a PII key comes from. Never from a DAG or job file: a config names
//! an environment variable or a key file, and the key itself stays outside
//! the repository.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// The shortest key accepted, in bytes: a pseudonym is only as strong as
/// the key that nobody may guess.
pub const MIN_KEY_BYTES: usize = 16;

/// `key = { env = "NIGHTJAR_PII_KEY" }` or `key = { file = "...", generate = true }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySource {
    /// An environment variable holding the key (at least 16 bytes; text,
    /// or `hex:...` / `base64:...` for binary keys). `validate` fails when
    /// it is not set.
    pub env: Option<String>,
    /// A file holding the key (a mounted secret such as
    /// `/run/secrets/pii_key`), relative to the project folder.
    pub file: Option<String>,
    /// With `file`: create the file with a random key when it does not
    /// exist (mode 0600). For local development and demos only: a lost
    /// file means new pseudonyms.
    #[serde(default)]
    pub generate: bool,
}

impl KeySource {
    /// Problems `validate` can see without running: a key source naming
    /// both or neither place, or an environment variable that is not set.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        match (&self.env, &self.file) {
            (Some(_), Some(_)) | (None, None) => p.push((
                "give exactly one of `env` and `file`".into(),
                "key = { env = \"NIGHTJAR_PII_KEY\" }".into(),
            )),
            // A key declared under [env.NAME.secrets] is fetched when the run
            // starts: it is not missing, and its value is not checked here.
            (Some(var), None) => match crate::secrets::var(var) {
                None if crate::secrets::known(var) => {}
                None => p.push((
                    format!("environment variable `{var}` (the PII key) is not set"),
                    format!("export {var}=... (at least {MIN_KEY_BYTES} bytes), or declare it under [env.NAME.secrets] (Secrets Manager / SSM); never write the key in a file of the project"),
                )),
                Some(v) => {
                    if let Err(e) = decode(&v) {
                        p.push((format!("environment variable `{var}`: {e}"), key_hint()));
                    }
                }
            },
            (None, Some(_)) => {}
        }
        if self.generate && self.file.is_none() {
            p.push((
                "`generate` needs `file`".into(),
                "key = { file = \".nightjar/pii.key\", generate = true }".into(),
            ));
        }
        p
    }

    /// Reads the key. Errors name the variable or file, never the key.
    pub fn load(&self, project_dir: &Path) -> Result<Vec<u8>> {
        if let Some(var) = &self.env {
            let v = crate::secrets::var(var).ok_or_else(|| {
                anyhow::anyhow!("the PII key: environment variable `{var}` is not set (export it; never write the key in a file of the project)")
            })?;
            return decode(&v).with_context(|| format!("the PII key in `{var}`"));
        }
        let Some(file) = &self.file else {
            bail!("the PII key: give `key = {{ env = \"...\" }}` or `key = {{ file = \"...\" }}`");
        };
        let path = project_dir.join(file);
        if !path.exists() && self.generate {
            generate(&path)?;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("the PII key: cannot read key file {}", path.display()))?;
        decode(text.trim_end_matches(['\n', '\r'])).with_context(|| format!("the PII key in {}", path.display()))
    }
}

fn key_hint() -> String {
    format!(
        "use at least {MIN_KEY_BYTES} characters, or `hex:` / `base64:` followed by at least {MIN_KEY_BYTES} encoded bytes"
    )
}

/// Key text -> key bytes: `hex:...`, `base64:...`, or the text's bytes.
pub fn decode(text: &str) -> Result<Vec<u8>> {
    let bytes = if let Some(h) = text.strip_prefix("hex:") {
        let h = h.trim();
        if h.len() % 2 != 0 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("`hex:` key is not hex");
        }
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("checked hex"))
            .collect()
    } else if let Some(b) = text.strip_prefix("base64:") {
        base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .map_err(|_| anyhow::anyhow!("`base64:` key is not base64"))?
    } else {
        text.as_bytes().to_vec()
    };
    if bytes.len() < MIN_KEY_BYTES {
        bail!("the key is {} bytes, shorter than {MIN_KEY_BYTES}", bytes.len());
    }
    Ok(bytes)
}

/// A sub-key for one purpose (pseudonyms, tokens), so that one master key
/// serves several algorithms without reusing the same bytes in each.
pub fn derive(master: &[u8], purpose: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut counter = 1u8;
    while out.len() < len {
        let mut m = Hmac::<Sha256>::new_from_slice(master).expect("any key length");
        m.update(b"nightjar-pii:");
        m.update(purpose.as_bytes());
        m.update(&[counter]);
        out.extend_from_slice(&m.finalize().into_bytes());
        counter += 1;
    }
    out.truncate(len);
    out
}

fn generate(path: &PathBuf) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut bytes = [0u8; 32];
    let mut f = std::fs::File::open("/dev/urandom").context("reading /dev/urandom for a new key")?;
    std::io::Read::read_exact(&mut f, &mut bytes)?;
    let text = format!("base64:{}\n", base64::engine::general_purpose::STANDARD.encode(bytes));
    // Written whole to a private temporary file, then linked into place:
    // tasks generating at the same moment never read a half-written key,
    // and exactly one key wins (a hard link fails if the name exists).
    let tmp = path.with_extension(format!("tmp.{}.{:x}", std::process::id(), fastrand::u64(..)));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let written = opts
        .open(&tmp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()).and_then(|_| f.sync_all()))
        .with_context(|| format!("writing key file {}", tmp.display()));
    let linked = written.and_then(|_| match std::fs::hard_link(&tmp, path) {
        Ok(()) => Ok(()),
        // Another task created it at the same moment: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating key file {}", path.display())),
    });
    let _ = std::fs::remove_file(&tmp);
    linked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_and_lengths() {
        assert_eq!(decode("hex:000102030405060708090a0b0c0d0e0f").unwrap()[15], 15);
        assert!(decode("short").is_err());
        assert!(decode("hex:zz").is_err());
        assert_eq!(decode("base64:AAAAAAAAAAAAAAAAAAAAAA==").unwrap().len(), 16);
        assert_eq!(decode("a passphrase of some length").unwrap().len(), 27);
    }

    #[test]
    fn concurrent_generation_agrees_on_one_whole_key() {
        let dir = tempfile::tempdir().unwrap();
        let src = KeySource {
            env: None,
            file: Some("pii.key".into()),
            generate: true,
        };
        let keys: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|_| s.spawn(|| src.load(dir.path()).unwrap())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.iter().all(|k| k.len() == 32 && *k == keys[0]));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn generated_file_is_stable_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let src = KeySource {
            env: None,
            file: Some("k/pii.key".into()),
            generate: true,
        };
        let a = src.load(dir.path()).unwrap();
        let b = src.load(dir.path()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("k/pii.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn missing_env_is_a_problem_that_names_the_variable() {
        let src = KeySource {
            env: Some("NIGHTJAR_TEST_SURELY_UNSET_KEY".into()),
            file: None,
            generate: false,
        };
        let p = src.problems();
        assert_eq!(p.len(), 1);
        assert!(p[0].0.contains("NIGHTJAR_TEST_SURELY_UNSET_KEY"));
        let err = src.load(Path::new(".")).unwrap_err().to_string();
        assert!(err.contains("not set"), "{err}");
    }

    #[test]
    fn derived_keys_differ_by_purpose() {
        let a = derive(b"0123456789abcdef", "tokenize", 64);
        let b = derive(b"0123456789abcdef", "pseudonym", 64);
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(a, derive(b"0123456789abcdef", "tokenize", 64));
    }
}

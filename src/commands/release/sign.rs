//! `airlock sign`: add a co-signature. The archive is rewritten to a temp file while
//! being structurally verified, then renamed over the original (keeping its mode);
//! the manifest bytes, hence the bundle id, do not change. A bundle this key already
//! signed is left untouched.

use crate::archive::writer::BundleWriter;
use crate::archive::{read_bundle, Judge, Limits, Opened, Sink, VerifyError};
use crate::bundle_path::BundlePath;
use crate::cli::SignArgs;
use crate::commands::common::{source_date_epoch, AtomicFile, NewFileMode};
use crate::commands::signing_key::load_secret_key;
use crate::commands::signing_key::SigningKey;
use crate::error::{Error, Result};
use crate::manifest;
use crate::minisign::sign_with;
use crate::report::{Outcome, Report};
use serde::Serialize;
use std::io::{BufWriter, Read};
use std::path::PathBuf;

#[derive(Serialize, schemars::JsonSchema)]
pub struct SignReport {
    /// The bundle file.
    pub bundle: PathBuf,
    pub bundle_id: String,
    pub bundle_name: String,
    pub bundle_version: String,
    pub added: String,
    pub signatures: Vec<String>,
}

impl Report for SignReport {
    fn human(&self) -> String {
        format!(
            "added signature by {} to {}\n  bundle id: {} (unchanged)\n  signatures: {}",
            self.added,
            self.bundle.display(),
            self.bundle_id,
            self.signatures.join(", ")
        )
    }
}

struct Rewrite<'a> {
    key: &'a SigningKey,
    file: Option<std::fs::File>,
    writer: Option<BundleWriter<BufWriter<std::fs::File>>>,
    timestamp: i64,
    signers: Vec<String>,
    /// This key's own signature is already in the bundle (and verifies): the rest of
    /// the bundle is still read and checked, but nothing is written.
    already_signed: bool,
    /// The key (a token, an agent) failed to sign: the reader stops, and this, not
    /// a verification failure, is the error (the bundle was fine).
    sign_failed: Option<crate::minisign::SignerError>,
}

impl Sink for Rewrite<'_> {
    fn begin(&mut self, op: &Opened) -> Result<(), VerifyError> {
        if let Some((file, existing)) = op
            .signatures
            .iter()
            .find(|(_, s)| s.key_id == self.key.key_id)
        {
            // Ours only if it verifies with our public key and names this bundle;
            // anything else under our key id is a damaged or forged signature.
            let names_this_bundle = manifest::parse_trusted_comment(&existing.trusted_comment)
                .bundle_id
                .as_deref()
                == Some(op.bundle_id.as_str());
            return match self.key.public().verify(&op.manifest_bytes, existing) {
                Ok(()) if names_this_bundle => {
                    self.already_signed = true;
                    Ok(())
                }
                Ok(()) => Err(VerifyError::Signature {
                    file: file.clone(),
                    why: format!(
                        "already holds a signature by key {} whose trusted comment names another bundle",
                        self.key.key_id
                    ),
                }),
                Err(e) => Err(VerifyError::Signature {
                    file: file.clone(),
                    why: format!(
                        "already holds a signature under key id {} that does not verify with this key ({e})",
                        self.key.key_id
                    ),
                }),
            };
        }
        let tc = manifest::trusted_comment(&op.manifest, &op.bundle_id, self.timestamp);
        let mut sigs: Vec<_> = op.signatures.iter().map(|(_, s)| s.clone()).collect();
        let ours = sign_with(self.key, &op.manifest_bytes, &tc).map_err(|e| {
            let stop = VerifyError::Write(format!("cannot sign: {e}"));
            self.sign_failed = Some(e);
            stop
        })?;
        sigs.push(ours);
        self.signers = sigs.iter().map(|s| s.key_id.to_string()).collect();
        self.signers.sort();
        let f = self.file.take().expect("begin once");
        let w = BundleWriter::new(
            BufWriter::with_capacity(1 << 20, f),
            6,
            &op.manifest_bytes,
            &sigs,
        )
        .map_err(|e| VerifyError::Write(e.to_string()))?;
        let mut w = w;
        // The trust store the bundle carries, as it was (after the signatures).
        for (rel, bytes) in op.trust_update.iter().flat_map(|t| t.files.iter()) {
            let path = format!("{}{rel}", manifest::TRUST_UPDATE_DIR);
            w.add(&path, bytes.len() as u64, &mut &bytes[..])
                .map_err(|e| VerifyError::Write(e.to_string()))?;
        }
        self.writer = Some(w);
        Ok(())
    }
    fn file(&mut self, path: &BundlePath, size: u64, data: &mut dyn Read) -> std::io::Result<()> {
        match self.writer.as_mut() {
            Some(w) => w.add(path.as_str(), size, data),
            None => Ok(()),
        }
    }
}

pub fn run(args: SignArgs) -> Result<Outcome> {
    let key = load_secret_key(&args.key, &args.pass)?;
    let mut tmp = AtomicFile::new(&args.bundle, NewFileMode::SameAs(&args.bundle))?;
    let file = tmp
        .file()
        .try_clone()
        .map_err(|e| Error::io("cannot write bundle", e))?;
    let timestamp = source_date_epoch()?.unwrap_or_else(|| chrono::Utc::now().timestamp());
    let mut sink = Rewrite {
        key: &key,
        file: Some(file),
        writer: None,
        timestamp,
        signers: vec![],
        already_signed: false,
        sign_failed: None,
    };
    let read = read_bundle(
        &args.bundle,
        Judge::StructureOnly,
        &Limits::default(),
        &mut sink,
    );
    if let Some(e) = sink.sign_failed.take() {
        // `tmp` is dropped unused: the bundle is as it was.
        return Err(Error::Signer(e));
    }
    let opened = read?;
    if sink.already_signed {
        // `tmp` is dropped unused: the bundle's bytes and mode are untouched.
        return Err(Error::AlreadySigned {
            bundle: args.bundle,
            key_id: key.key_id.to_string(),
        });
    }
    let w = sink
        .writer
        .take()
        .ok_or_else(|| Error::usage("bundle has no payload", None))?;
    let werr = |e: std::io::Error| Error::io(format!("cannot write {}", args.bundle.display()), e);
    w.finish()
        .map_err(werr)?
        .into_inner()
        .map_err(|e| werr(e.into_error()))?;
    tmp.commit(true)?;
    Ok(Box::new(SignReport {
        bundle: args.bundle,
        bundle_name: opened.manifest.bundle.name.clone(),
        bundle_version: opened.manifest.bundle.version.clone(),
        bundle_id: opened.bundle_id,
        added: key.key_id.to_string(),
        signatures: sink.signers,
    }))
}

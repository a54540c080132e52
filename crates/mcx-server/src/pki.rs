//! A development PKI, so that a newcomer can interconnect local systems in minutes:
//! `mcx pki init DIR` creates a certificate authority; `mcx pki issue DIR DOMAIN` issues a
//! system's certificate, whose subject alternative name is the system's domain (the name
//! partners check). Production systems use their operators' PKI instead.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use mcx_model::SystemDomain;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The CA certificate file in a PKI directory.
pub const CA_CERT: &str = "ca.crt";
/// The CA key file in a PKI directory.
pub const CA_KEY: &str = "ca.key";

/// A system's certificate and key files.
#[derive(Debug, Clone)]
pub struct IssuedFiles {
    /// The certificate (PEM).
    pub certificate: PathBuf,
    /// The private key (PEM, PKCS#8).
    pub private_key: PathBuf,
}

/// Writes a file only its owner may read (0600): keys, configurations with credentials.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot write '{}'", path.display()))?;
        file.write_all(text.as_bytes())?;
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, text).with_context(|| format!("cannot write '{}'", path.display()))
    }
}

/// Creates a development certificate authority in `dir` (refusing to replace one).
pub fn init(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create '{}'", dir.display()))?;
    let cert_path = dir.join(CA_CERT);
    if cert_path.exists() {
        bail!(
            "'{}' already holds a certificate authority; issue certificates with it, or choose another directory",
            dir.display()
        );
    }
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().context("generating the CA key")?;
    let cert = params
        .self_signed(&key)
        .context("signing the CA certificate")?;
    write_private(&dir.join(CA_KEY), &key.serialize_pem())?;
    std::fs::write(&cert_path, cert.pem())
        .with_context(|| format!("cannot write '{}'", cert_path.display()))?;
    Ok(cert_path)
}

/// Issues a certificate for the system `domain`, signed by the CA in `dir`.
pub fn issue(dir: &Path, domain: &SystemDomain) -> anyhow::Result<IssuedFiles> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read '{}': create the authority first with 'mcx pki init {}'",
                path.display(),
                dir.display()
            )
        })
    };
    let ca_key = KeyPair::from_pem(&read(CA_KEY)?).context("reading the CA key")?;
    let issuer =
        Issuer::from_ca_cert_pem(&read(CA_CERT)?, ca_key).context("reading the CA certificate")?;
    let mut params = CertificateParams::new(vec![domain.to_string()])
        .with_context(|| format!("'{domain}' cannot be a certificate name"))?;
    params
        .distinguished_name
        .push(DnType::CommonName, domain.as_str());
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate().context("generating the system key")?;
    let cert = params
        .signed_by(&key, &issuer)
        .context("signing the system certificate")?;
    let files = IssuedFiles {
        certificate: dir.join(format!("{domain}.crt")),
        private_key: dir.join(format!("{domain}.key")),
    };
    std::fs::write(&files.certificate, cert.pem())
        .with_context(|| format!("cannot write '{}'", files.certificate.display()))?;
    write_private(&files.private_key, &key.serialize_pem())?;
    Ok(files)
}

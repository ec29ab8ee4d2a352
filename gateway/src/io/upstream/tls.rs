//! TLS material for `mqtts` links: loaded once when the connector is built, shared by every
//! link as one rustls [`ClientConfig`] (ring provider, chosen explicitly).
//!
//! rumqttc verifies the certificate against the host it connects to. When
//! [`TlsConfig::server_name`] names another host, the verifier is wrapped so that the
//! certificate is checked against that name instead (the TCP connection still goes to `host`;
//! SNI carries `host` when it is a DNS name).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::UpstreamSetupError;
use crate::core::config::ClientIdentity;
use crate::io::config::{Scheme, TlsConfig, UpstreamEndpoint};

/// The rustls client configuration for one link: `endpoint`'s, with `identity` as the client
/// certificate instead of the endpoint's when given; `None` for plain `mqtt`.
pub(crate) fn client_config_for(
    endpoint: &UpstreamEndpoint,
    identity: &ClientIdentity,
) -> Result<Option<Arc<ClientConfig>>, UpstreamSetupError> {
    let mut endpoint = endpoint.clone();
    endpoint.tls.client_cert = Some(identity.cert.clone());
    endpoint.tls.client_key = Some(identity.key.clone());
    client_config(&endpoint)
}

/// The rustls client configuration for `endpoint`, or `None` for plain `mqtt`.
pub(crate) fn client_config(
    endpoint: &UpstreamEndpoint,
) -> Result<Option<Arc<ClientConfig>>, UpstreamSetupError> {
    if endpoint.scheme != Scheme::Mqtts {
        return Ok(None);
    }
    let tls = &endpoint.tls;
    let ca_file = tls
        .ca_file
        .as_deref()
        .ok_or(UpstreamSetupError::MissingCaFile)?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(read_certs(ca_file)?);
    if added == 0 {
        return Err(UpstreamSetupError::NoCertificates {
            path: ca_file.to_owned(),
        });
    }
    let client_auth = client_auth(tls)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let roots = Arc::new(roots);
    let builder = match tls.server_name.as_deref() {
        Some(name) if name != endpoint.host => {
            let name = ServerName::try_from(name.to_owned()).map_err(|_| {
                UpstreamSetupError::InvalidServerName {
                    name: name.to_owned(),
                }
            })?;
            let inner = WebPkiServerVerifier::builder_with_provider(roots, provider).build()?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(FixedNameVerifier { inner, name }))
        }
        _ => {
            // rumqttc checks `host` itself; fail early if it cannot be a TLS server name.
            ServerName::try_from(endpoint.host.clone()).map_err(|_| {
                UpstreamSetupError::InvalidServerName {
                    name: endpoint.host.clone(),
                }
            })?;
            builder.with_root_certificates(roots)
        }
    };
    let config = match client_auth {
        Some((certs, key)) => builder.with_client_auth_cert(certs, key)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Some(Arc::new(config)))
}

type ClientAuth = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn client_auth(tls: &TlsConfig) -> Result<Option<ClientAuth>, UpstreamSetupError> {
    match (&tls.client_cert, &tls.client_key) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => {
            let certs = read_certs(cert)?;
            if certs.is_empty() {
                return Err(UpstreamSetupError::NoCertificates { path: cert.clone() });
            }
            let key_der = rustls_pemfile::private_key(&mut reader(key)?)
                .map_err(|source| read_error(key, source))?
                .ok_or_else(|| UpstreamSetupError::NoPrivateKey { path: key.clone() })?;
            Ok(Some((certs, key_der)))
        }
        _ => Err(UpstreamSetupError::IncompleteClientAuth),
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, UpstreamSetupError> {
    rustls_pemfile::certs(&mut reader(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| read_error(path, source))
}

fn reader(path: &Path) -> Result<BufReader<File>, UpstreamSetupError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| read_error(path, source))
}

fn read_error(path: &Path, source: std::io::Error) -> UpstreamSetupError {
    UpstreamSetupError::Read {
        path: PathBuf::from(path),
        source,
    }
}

/// Checks the server certificate against a configured name instead of the connected host.
#[derive(Debug)]
struct FixedNameVerifier {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for FixedNameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

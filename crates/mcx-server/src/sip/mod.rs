//! The SIP door to the MC service server (TS 24.379): a listener on UDP and TCP (the same
//! port) on rsipstack's RFC 3261 transaction layer (retransmissions answered from the
//! transaction, timers), and the requests mcx understands: explicit affiliation by
//! PUBLISH (`publish.rs`), affiliation status and group documents by SUBSCRIBE / NOTIFY
//! (`subscribe.rs`), preconfigured regroup by MESSAGE (`message.rs`); who asks is read in
//! `caller.rs`; any other method is answered 405. The crate is kept behind this module so that
//! another stack could replace it.

mod caller;
mod merged;
mod message;
mod multipart;
mod publish;
mod restore;
mod subscribe;
mod tell;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use mcx_core::system::McSystem;
use rsipstack::sip::prelude::HeadersExt as _;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::Transaction;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{TcpListenerConnection, TransportLayer};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub(crate) use publish::Publications;

/// The largest SIP request mcx takes, in bytes (start line, headers and the body its
/// Content-Length declares): what rsipstack 0.7.14 reads of one UDP datagram (a longer
/// one is cut there, so its body falls short of its Content-Length), kept the same on
/// TCP and TLS so that a client meets one limit whatever it uses.
pub(crate) const MAX_MESSAGE_BYTES: usize = 8192;

/// A SIP answer: status, reason phrase (a sentence that says why, for refusals) and
/// extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) code: u16,
    pub(crate) reason: String,
    pub(crate) headers: Vec<(String, String)>,
}

impl Answer {
    pub(crate) fn new(code: u16, reason: &str) -> Self {
        // A reason phrase is one line.
        let reason = reason.replace(['\r', '\n'], " ");
        Self {
            code,
            reason,
            headers: Vec::new(),
        }
    }

    pub(crate) fn header(mut self, name: &str, value: String) -> Self {
        self.headers.push((name.to_string(), value));
        self
    }

    /// A refusal of the core, its sentence in the reason phrase.
    pub(crate) fn from_core(error: &mcx_core::error::Error) -> Self {
        use mcx_core::error::{Error, ErrorKind};
        let (code, why) = match error {
            Error::Refused { kind, detail, .. } => {
                let code = match kind {
                    ErrorKind::Invalid | ErrorKind::Unprocessable => 400,
                    ErrorKind::Unauthenticated | ErrorKind::Forbidden => 403,
                    ErrorKind::NotFound => 404,
                    ErrorKind::Conflict
                    | ErrorKind::PreconditionFailed
                    | ErrorKind::PreconditionRequired => 409,
                    ErrorKind::Unavailable | ErrorKind::Throttled { .. } => 503,
                };
                (code, detail.clone())
            }
            Error::Store(_) => (
                503,
                "the server could not reach its storage; nothing was changed".to_string(),
            ),
        };
        Self::new(code, &why)
    }

    /// A refusal of the core as 403, its sentence after `why` (a storage failure stays
    /// 503): for checks that decide who may ask, where SIP has no 401 without a challenge.
    pub(crate) fn forbidden(error: &mcx_core::error::Error, why: &str) -> Self {
        match error {
            mcx_core::error::Error::Refused { detail, .. } => {
                Self::new(403, &format!("Forbidden: {why}{detail}"))
            }
            other => Self::from_core(other),
        }
    }
}

/// How the SIP door is set up.
#[derive(Debug, Clone)]
pub struct SipOptions {
    /// UDP and TCP, the same port.
    pub listen: SocketAddr,
    /// The MC service server's PSI (`sip:user@domain`).
    pub psi: String,
    /// The GMS's PSI.
    pub gms_psi: String,
    /// Proxies whose `P-Asserted-Identity` is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The absolute URI of the XCAP root the xcap-diff NOTIFYs name.
    pub xcap_root: String,
    /// SIP over TLS: where, and the certificate chain and key (PEM files).
    pub tls: Option<(SocketAddr, std::path::PathBuf, std::path::PathBuf)>,
}

/// The running SIP listener.
pub struct SipEdge {
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl SipEdge {
    /// Where it listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where it listens for SIP over TLS, if it does.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// Stops listening, and waits (up to 5 s) for its tasks to end. Subscriptions and
    /// publications stay stored: a stop is not their end.
    pub async fn stop(&self) {
        self.cancel.cancel();
        self.tasks.close();
        if tokio::time::timeout(Duration::from_secs(5), self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("SIP tasks still running 5 s after the stop");
        }
    }
}

impl Drop for SipEdge {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Starts the SIP listener (UDP, and TCP on the same port).
pub async fn start(
    options: SipOptions,
    system: Arc<McSystem>,
    store: Arc<dyn mcx_core::ports::SipStateStore>,
) -> anyhow::Result<SipEdge> {
    let policy = Arc::new(caller::Policy {
        psi: caller::Psi::parse(&options.psi).context("[sip] psi")?,
        gms_psi: caller::Psi::parse(&options.gms_psi).context("[sip] gms-psi")?,
        trusted_proxies: options.trusted_proxies.clone(),
    });
    let listen = options.listen;
    let xcap_root = options.xcap_root;
    let cancel = CancellationToken::new();
    let layer = TransportLayer::new(cancel.child_token());
    let udp = bind_udp_and_tcp_port(listen, &cancel).await?;
    let addr = udp
        .get_addr()
        .get_socketaddr()
        .context("reading the SIP listen address")?;
    layer.add_transport(udp.into());
    // rsipstack binds TCP when it serves and reports no port: TCP takes UDP's port.
    let tcp = TcpListenerConnection::new(addr, None)
        .await
        .with_context(|| format!("cannot listen for SIP on tcp {addr}"))?;
    layer.add_transport(tcp.into());
    let tls_addr = match &options.tls {
        Some((tls_listen, certificate, key)) => {
            let tls_addr = tls_address(*tls_listen)?;
            let read = |path: &std::path::Path| {
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))
            };
            // The crate's TLS takes the process-wide provider; mcx's is ring.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let config = rsipstack::transport::tls::TlsConfig {
                cert: Some(read(certificate)?),
                key: Some(read(key)?),
                ..Default::default()
            };
            let tls = rsipstack::transport::tls::TlsListenerConnection::new(tls_addr, None, config)
                .await
                .with_context(|| format!("cannot listen for SIP over TLS on {tls_addr}"))?;
            layer.add_transport(tls.into());
            Some(tls_addr)
        }
        None => None,
    };
    let endpoint = rsipstack::EndpointBuilder::new()
        .with_user_agent("mcx")
        .with_transport_layer(layer)
        .with_cancel_token(cancel.child_token())
        .build();
    let mut incoming = endpoint
        .incoming_transactions()
        .context("taking the SIP endpoint's requests")?;
    let tasks = TaskTracker::new();
    let inner = endpoint.inner.clone();
    tasks.spawn(async move {
        if let Err(e) = inner.serve().await {
            tracing::warn!(error = ?e, "SIP endpoint stopped");
        }
    });
    // The crate binds TCP and TLS in that task and only logs a failure: the edge is not
    // up (nor reported) until they listen.
    until_listening(addr, "tcp").await?;
    if let Some(tls_addr) = tls_addr {
        until_listening(tls_addr, "tls").await?;
    }
    let publications = Arc::new(Publications::load(store.clone()).await?);
    let layer = rsipstack::dialog::dialog_layer::DialogLayer::new(endpoint.inner.clone());
    let (states, mut dialog_states) = layer.new_dialog_state_channel();
    // Dialog state changes are not used; the channel is unbounded, so it is drained.
    tokio::spawn(async move { while dialog_states.recv().await.is_some() {} });
    let dialogs = Arc::new(subscribe::Dialogs {
        xcap_root,
        policy,
        publications: publications.clone(),
        store,
        layer,
        states,
        subscriptions: Default::default(),
        tasks: tasks.clone(),
        stop: cancel.child_token(),
    });
    let restored = restore::restore_all(&system, &dialogs).await;
    if restored > 0 {
        tracing::info!(restored, "SIP subscriptions carried on after the restart");
    }
    tell::start(&system, &dialogs);
    let stop = cancel.child_token();
    let spawner = tasks.clone();
    let recent = Arc::new(merged::Recent::default());
    tasks.spawn(async move {
        let _endpoint = endpoint;
        loop {
            let next = tokio::select! {
                _ = stop.cancelled() => break,
                next = incoming.recv() => next,
            };
            let Some(transaction) = next else { break };
            spawner.spawn(serve(
                transaction,
                system.clone(),
                dialogs.clone(),
                recent.clone(),
            ));
        }
    });
    tracing::info!(%addr, tls = ?tls_addr, "SIP listening (udp, tcp, and tls when set)");
    Ok(SipEdge {
        addr,
        tls_addr,
        cancel,
        tasks,
    })
}

/// The TLS address; port 0 becomes a free port (the crate binds when it serves and
/// reports no port, so one is found first).
fn tls_address(listen: SocketAddr) -> anyhow::Result<SocketAddr> {
    if listen.port() != 0 {
        return Ok(listen);
    }
    let probe = std::net::TcpListener::bind(listen)
        .with_context(|| format!("cannot find a free port for SIP over TLS on {listen}"))?;
    probe.local_addr().context("reading the probed TLS port")
}

/// Binds the UDP listener at a port TCP is free at too (SIP over TCP takes UDP's port):
/// for port 0, a port the kernel gives TCP is taken for both (a free UDP port may be a
/// TCP port in use, by an outgoing connection for instance); a fixed port must be free
/// for TCP, waiting as `bind_udp` does for a listener of this process being stopped.
async fn bind_udp_and_tcp_port(
    listen: SocketAddr,
    cancel: &CancellationToken,
) -> anyhow::Result<UdpConnection> {
    if listen.port() != 0 {
        let mut tries = 0;
        while let Err(e) = std::net::TcpListener::bind(listen) {
            if tries >= 100 {
                return Err(anyhow::Error::new(e))
                    .with_context(|| format!("cannot listen for SIP on tcp {listen}"));
            }
            tries += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        return bind_udp(listen, cancel).await;
    }
    let mut last = None;
    for _ in 0..20 {
        let port = std::net::TcpListener::bind(listen)
            .and_then(|probe| probe.local_addr())
            .with_context(|| format!("cannot find a free port for SIP on {listen}"))?
            .port();
        let at = SocketAddr::new(listen.ip(), port);
        match udp_listener(at, cancel).await {
            Ok(udp) => return Ok(udp),
            Err(e) => last = Some(e),
        }
    }
    Err(anyhow::anyhow!("{last:?}")).with_context(|| {
        format!("cannot find a port free for SIP over both UDP and TCP on {listen}")
    })
}

/// Whether a TCP listener is bound at `addr`. A bind with SO_REUSEADDR fails then and
/// only then, and does not stand in the way of a listener about to bind (a plain bind
/// would).
fn tcp_listening(addr: SocketAddr) -> bool {
    use socket2::{Domain, Protocol, Socket, Type};
    let Ok(socket) = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
    else {
        return false;
    };
    let _ = socket.set_reuse_address(true);
    matches!(socket.bind(&addr.into()), Err(e) if e.kind() == std::io::ErrorKind::AddrInUse)
}

/// Waits up to 5 s for the crate's listener at `addr`.
async fn until_listening(addr: SocketAddr, transport: &str) -> anyhow::Result<()> {
    for _ in 0..250 {
        if tcp_listening(addr) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("cannot listen for SIP on {transport} {addr} (see the warning before this)")
}

/// Binds the UDP listener; a port still held by a listener being stopped in this
/// process (a restart) is tried again for up to 10 s (under load the stopped
/// transport's socket took longer than 2 s to close).
async fn bind_udp(listen: SocketAddr, cancel: &CancellationToken) -> anyhow::Result<UdpConnection> {
    let mut tries = 0;
    loop {
        match udp_listener(listen, cancel).await {
            Ok(udp) => return Ok(udp),
            Err(e) if tries < 100 && listen.port() != 0 => {
                tracing::debug!(error = ?e, %listen, "SIP port busy; trying again");
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e))
                    .with_context(|| format!("cannot listen for SIP on udp {listen}"));
            }
        }
    }
}

/// What the SIP UDP socket asks the kernel to buffer: 4 MiB, about a second of PUBLISHes
/// at the door's peak. The default (212 KiB on Linux) holds some 70 ms of them; a longer
/// stall of the reading task (a slow fsync, a busy worker) dropped datagrams, and each
/// drop cost the client a retransmission 500 ms later. The kernel caps the request at
/// `net.core.rmem_max` (OPERATIONS.md).
const UDP_RECEIVE_BUFFER: usize = 4 << 20;

/// A UDP listener bound at `at` with [`UDP_RECEIVE_BUFFER`] asked for. rsipstack's own
/// constructor takes the kernel's default.
async fn udp_listener(
    at: SocketAddr,
    cancel: &CancellationToken,
) -> rsipstack::Result<UdpConnection> {
    let socket = tokio::net::UdpSocket::from_std(udp_socket(at)?.into())?;
    UdpConnection::from_socket(Arc::new(socket), None, Some(cancel.child_token())).await
}

fn udp_socket(at: SocketAddr) -> std::io::Result<socket2::Socket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(at), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    if let Err(e) = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER) {
        tracing::warn!(error = %e, "the SIP UDP receive buffer keeps the kernel's default size");
    }
    socket.bind(&at.into())?;
    let granted = socket.recv_buffer_size().unwrap_or_default();
    tracing::debug!(%at, granted, "SIP UDP receive buffer");
    Ok(socket)
}

/// Answers one request; every request gets a final answer, whatever fails.
async fn serve(
    mut transaction: Transaction,
    system: Arc<McSystem>,
    dialogs: Arc<subscribe::Dialogs>,
    recent: Arc<merged::Recent>,
) {
    if transaction.original.method == Method::Ack {
        return;
    }
    if let Some(answer) = malformed(&transaction.original) {
        return reply(transaction, answer).await;
    }
    if recent.merged(&transaction.original, &transaction.key.to_string()) {
        return reply(
            transaction,
            Answer::new(
                482,
                "Loop Detected: a request with this From tag, Call-ID and CSeq came on another branch and is done once",
            ),
        )
        .await;
    }
    if transaction.original.method == Method::Subscribe {
        let Some(answer) = subscribe::handle(&mut transaction, &system, &dialogs).await else {
            return;
        };
        return reply(transaction, answer).await;
    }
    let request = &transaction.original;
    let value = |long: &str, compact: &str| {
        request
            .header_value(long)
            .or_else(|| request.header_value(compact))
    };
    let answer = match request.method {
        Method::Publish => 'publish: {
            if let Err(answer) = caller::Policy::check_addressed(&dialogs.policy.psi, request) {
                break 'publish answer;
            }
            let publish = publish::Publish {
                event: value("Event", "o"),
                expires: request.header_value("Expires"),
                if_match: request.header_value("SIP-If-Match"),
                content_type: value("Content-Type", "c"),
                asserted: dialogs.policy.asserted(request),
                reach: publish::reachable_at(request),
                body: &request.body,
            };
            publish::handle(&system, &dialogs.publications, publish).await
        }
        Method::Message => 'message: {
            if let Err(answer) = caller::Policy::check_addressed(&dialogs.policy.psi, request) {
                break 'message answer;
            }
            let message = message::Message {
                content_type: value("Content-Type", "c"),
                asserted: dialogs.policy.asserted(request),
                body: &request.body,
            };
            message::handle(&system, message).await
        }
        // The transaction layer absorbs ACKs; nothing to answer.
        Method::Ack => return,
        _ => Answer::new(
            405,
            "Method Not Allowed: this server handles PUBLISH, SUBSCRIBE and MESSAGE",
        )
        .header("Allow", "PUBLISH, SUBSCRIBE, MESSAGE".to_string()),
    };
    reply(transaction, answer).await;
}

/// What RFC 3261 §8.1.1 requires of every request that the parser let through: the
/// headers a transaction and a dialog are built from, and a CSeq naming the request's
/// own method (§8.2.2: otherwise 400).
fn malformed(request: &rsipstack::sip::Request) -> Option<Answer> {
    for (long, compact) in [("To", "t"), ("From", "f"), ("Call-ID", "i"), ("CSeq", "")] {
        let present = request.header_value(long).is_some()
            || (!compact.is_empty() && request.header_value(compact).is_some());
        if !present {
            return Some(Answer::new(
                400,
                &format!("Bad Request: the request has no {long} header"),
            ));
        }
    }
    // RFC 3261 §18.3: a body shorter than its Content-Length (the datagram ended first)
    // is an error; two lengths that disagree leave no way to know where it ends.
    let lengths: Vec<String> = request
        .headers
        .iter()
        .filter_map(|h| match h {
            Header::ContentLength(v) => Some(v.value().trim().to_string()),
            Header::Other(name, v) if name.eq_ignore_ascii_case("l") => Some(v.trim().to_string()),
            _ => None,
        })
        .collect();
    if lengths.iter().any(|l| l != &lengths[0]) {
        return Some(Answer::new(
            400,
            "Bad Request: the request has Content-Length headers that disagree",
        ));
    }
    let declared = lengths.first().and_then(|l| l.parse::<usize>().ok());
    // Counted with the body it declares: a datagram cut at the limit is refused as too
    // large, which it is, rather than as short.
    let head = request.to_bytes().len() - request.body.len();
    let size = head + declared.unwrap_or(0).max(request.body.len());
    if size > MAX_MESSAGE_BYTES {
        return Some(Answer::new(
            413,
            &format!(
                "Request Entity Too Large: this server takes SIP requests of at most {MAX_MESSAGE_BYTES} bytes; this one has {size}"
            ),
        ));
    }
    if let Some(declared) = declared
        && declared > request.body.len()
    {
        return Some(Answer::new(
            400,
            &format!(
                "Bad Request: Content-Length says {declared} bytes, the body has {}",
                request.body.len()
            ),
        ));
    }
    let cseq_method = request
        .header_value("CSeq")
        .and_then(|c| c.split_whitespace().nth(1).map(str::to_string));
    if cseq_method.as_deref() != Some(request.method.to_string().as_str()) {
        return Some(Answer::new(
            400,
            &format!(
                "Bad Request: the CSeq names {} but the request is a {}",
                cseq_method.as_deref().unwrap_or("no method"),
                request.method
            ),
        ));
    }
    None
}

async fn reply(mut transaction: Transaction, answer: Answer) {
    let method = transaction.original.method.to_string();
    let headers = answer
        .headers
        .into_iter()
        .map(|(name, value)| Header::Other(name, value))
        .collect();
    let code = answer.code;
    if let Err(e) = transaction
        .reply_with(StatusCode::Other(code, answer.reason), headers, None)
        .await
    {
        tracing::debug!(error = ?e, %method, code, "SIP answer not sent");
    }
}

#[cfg(test)]
mod tests {
    /// The listener's receive buffer is larger than the kernel's default (the kernel
    /// caps the request at `net.core.rmem_max`, and grants at least twice the default).
    #[test]
    fn the_sip_udp_socket_buffers_more_than_the_kernels_default() {
        let at: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        let plain = std::net::UdpSocket::bind(at).unwrap();
        let default = socket2::SockRef::from(&plain).recv_buffer_size().unwrap();
        let granted = super::udp_socket(at).unwrap().recv_buffer_size().unwrap();
        assert!(
            granted > default,
            "granted {granted} bytes, the default is {default}"
        );
    }
}

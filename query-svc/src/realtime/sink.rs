//! What a session's frames go through ([`Sink`], a WebSocket or an SSE stream) and why a
//! session ends ([`End`], each a WebSocket close code of `docs/realtime.md`).

/// Why a session ends; each maps to a WebSocket close code (`docs/realtime.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client closed or the transport failed.
    Gone,
    /// The server is shutting down (1001).
    Shutdown,
    /// The token expired (4001).
    Expired,
    /// The user's tokens were revoked (4001).
    Revoked,
    /// The tenant was suspended (4003).
    Suspended,
    /// Binary, oversized or unreadable frame (4002).
    Protocol,
    /// The outbound queue overflowed (4008).
    SlowConsumer,
    /// Nothing received within the idle window (4009).
    Idle,
    /// A hole could not be filled in time (4010).
    Resync,
}

impl End {
    /// The WebSocket close code and reason.
    pub fn close(self) -> (u16, &'static str) {
        match self {
            End::Gone => (1000, "bye"),
            End::Shutdown => (1001, "server shutting down; reconnect and sync"),
            End::Expired => (4001, "token expired"),
            End::Revoked => (4001, "token revoked"),
            End::Suspended => (4003, "tenant suspended"),
            End::Protocol => (4002, "protocol error"),
            End::SlowConsumer => (4008, "slow consumer; reconnect and sync"),
            End::Idle => (4009, "idle timeout"),
            End::Resync => (4010, "resync needed; reconnect and sync"),
        }
    }
}

/// Where a session's frames go.
pub trait Sink: Send {
    /// Sends one frame: `kind` is its `type`, `event_seq` its log position if it has one.
    ///
    /// # Errors
    /// [`End`] when the transport is gone or too slow.
    fn send(
        &mut self,
        kind: &'static str,
        event_seq: Option<u64>,
        json: String,
    ) -> impl std::future::Future<Output = Result<(), End>> + Send;
}

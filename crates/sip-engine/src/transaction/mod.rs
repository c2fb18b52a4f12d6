//! The transaction layer, RFC 3261 §17.
//!
//! Each transaction is a small state machine over bytes, status codes and time; see the diagrams
//! on [`client::InviteClientState`], [`client::NonInviteClientState`],
//! [`server::InviteServerState`] and [`server::NonInviteServerState`]. Matching (§17.1.3 and
//! §17.2.3) is done by the endpoint with [`ClientKey`] and [`ServerKey`].

pub(crate) mod client;
pub(crate) mod server;

use crate::message::Method;

/// What a transaction asks of the layer that drives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TxEffect {
    /// Send these bytes to the transaction's peer.
    Transmit(Vec<u8>),
    /// Hand the message that caused this effect to the transaction user.
    PassUp,
    /// Timer B, F or H fired: the peer did not answer in time.
    Timeout,
    /// The transport failed for this transaction (RFC 3261 §17.1.4, §17.2.4).
    TransportError,
    /// The transaction ended normally; forget it.
    Terminated,
}

/// RFC 3261 §17.1.3: a response matches a client transaction by the branch of its top Via and
/// the method of its CSeq.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    pub(crate) branch: String,
    pub(crate) method: Method,
}

/// RFC 3261 §17.2.3: a request matches a server transaction by the top Via's branch and
/// sent-by, and its method — where an ACK matches the INVITE it acknowledges.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ServerKey {
    pub(crate) branch: String,
    pub(crate) sent_by: String,
    pub(crate) method: Method,
}

impl ServerKey {
    /// The key of the transaction a request belongs to: an ACK belongs to its INVITE.
    pub(crate) fn for_request(branch: &str, sent_by: &str, method: &Method) -> Self {
        let method = match method {
            Method::Ack => Method::Invite,
            other => other.clone(),
        };
        Self { branch: branch.to_owned(), sent_by: sent_by.to_ascii_lowercase(), method }
    }
}

//! Why a message is not valid MDP, naming the frame that is wrong.

use super::Dialect;

/// A message that no dialect accepts; the index says which frame is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Fewer frames than the message kind needs.
    #[error("{what} needs at least {need} frames, got {got}")]
    TooShort {
        /// The kind of message, as far as it could be told.
        what: &'static str,
        /// Frames needed.
        need: usize,
        /// Frames present.
        got: usize,
    },
    /// A frame that must be empty is not.
    #[error("frame {index} must be empty")]
    NotEmpty {
        /// Zero-based frame index.
        index: usize,
    },
    /// No known protocol header where one must be.
    #[error("frame {index} is not an MDP header (got {found})")]
    UnknownHeader {
        /// Zero-based frame index.
        index: usize,
        /// The frame, printable.
        found: String,
    },
    /// A header the receiving side does not take (a client header sent to a worker).
    #[error("frame {index}: {found} is not expected here")]
    WrongHeader {
        /// Zero-based frame index.
        index: usize,
        /// The frame, printable.
        found: String,
    },
    /// A command code the dialect does not define (or not in this direction).
    #[error("frame {index}: unknown {dialect} command {found}")]
    UnknownCommand {
        /// Zero-based frame index.
        index: usize,
        /// The dialect the header selected.
        dialect: Dialect,
        /// The frame, printable.
        found: String,
    },
    /// A message between peered brokers (MDPB01) that is not well formed.
    #[error("frame {index}: MDPB01: {reason}")]
    Peering {
        /// Zero-based frame index.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

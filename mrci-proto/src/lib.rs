//! The MRCI wire protocol as plain data: headers, frames, type ids, payloads, async commands,
//! the TEXT argument language and the data constraints.
//!
//! Architecture invariant: this crate never does IO, never reads a clock and never panics on
//! input. Every decoder takes bytes and returns a value or an [`Error`]; every encoder appends
//! to a caller-supplied buffer. The tokio-util codecs in [`codec`] are thin glue over
//! [`Frame::decode`] and [`IpcFrame::decode`].
//!
//! Layout:
//! - [`text`]: UTF-16LE TEXT, fixed-width FTEXT and terminated NTEXT fields.
//! - [`ids`]: command, branch, session and user ids, sub-channel keys and the 54-byte list.
//! - [`type_id`]: the 29 payload type ids.
//! - [`async_id`]: the 43 seed async command ids and the host-internal extension ids.
//! - [`header`]: the 410-byte client header and the 35-byte host header.
//! - [`frame`], [`ipc`]: MRCI and IPC frames; [`codec`] (default feature `codec`): their
//!   tokio-util codecs; [`recycle`]: reuse of large payload buffers.
//! - [`payload`]: a typed payload for every type id that has a layout.
//! - [`args`]: the TEXT command-line tokeniser, key lookup and argument builder.
//! - [`async_cmd`]: typed payloads of the 43 async commands.
//! - [`constraints`]: the seed 000 §6.4 data-constraints table as validators.
//! - [`client`]: the client's handshake as a state machine and its command table.
//!
//! ```
//! use bytes::BytesMut;
//! use mrci_proto::{BranchId, CmdId, Frame};
//!
//! // An ERR frame for an unknown command, as the host sends it (PROTOCOL.md §2.3).
//! let frame = Frame::err(CmdId(999), BranchId(7), "err: No such command id: 999.");
//! let mut wire = BytesMut::new();
//! frame.encode(&mut wire)?;
//! assert_eq!(&wire[..8], &[0x03, 0xE7, 0x03, 0x07, 0x00, 0x3A, 0x00, 0x00]);
//! let decoded = Frame::decode(&mut wire, mrci_proto::frame::MAX_PAYLOAD)?;
//! assert_eq!(decoded, Some(frame));
//! # Ok::<(), mrci_proto::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod args;
pub mod async_cmd;
pub mod async_id;
pub mod client;
#[cfg(feature = "codec")]
pub mod codec;
pub mod constraints;
pub mod error;
pub mod frame;
pub mod header;
pub mod ids;
pub mod ipc;
pub mod payload;
pub mod recycle;
pub mod text;
pub mod type_id;

pub use error::{Error, Result};
pub use frame::Frame;
pub use ipc::IpcFrame;

pub use ids::{BranchId, ChLevel, CmdId, SessionId, SubChKey, SubChList, UserId};
pub use type_id::TypeId;

//! A typed payload for every type id that has a layout (PROTOCOL.md §3.3), one file per
//! family. Each type has `parse(&[u8]) -> Result<Self>` and `write(&self, &mut BytesMut)`;
//! [`Payload::parse`] picks the layout from a frame's type id.
//!
//! Invariant: parsing never panics and a parsed value is valid ("parse, don't validate").

mod ch;
mod file_info;
mod gen_file;
mod ipc_req;
mod new_cmd;
mod peer;
mod reader;

use bytes::{Bytes, BytesMut};

pub use ch::{ChMemberInfo, parse_ch_id, write_ch_id};
pub use file_info::FileInfo;
pub use gen_file::{GEN_FILE_CHUNK, GenFileArgs, GenFileProgress, PROGRESS_EVERY};
pub use ipc_req::AsyncRequest;
pub use new_cmd::{NewCmd, parse_cmd_id, write_cmd_id};
pub use peer::{MyInfo, PeerInfo, PeerStat};

use crate::error::{Error, Result};
use crate::header::Version;
use crate::ids::{CmdId, SessionId};
use crate::text;
use crate::type_id::TypeId;

/// A decoded payload, by type id.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Payload {
    /// GEN_FILE: arguments (first frame) or file data (later frames); kept raw because only
    /// the transfer's state tells which. See [`GenFileArgs`].
    GenFile(Bytes),
    /// TEXT, ERR, PRIV_TEXT or BIG_TEXT, decoded (lossily) from UTF-16LE.
    Text(String),
    /// IDLE, TERM_CMD, KILL_CMD, HALT_CMD, RESUME_CMD: no payload.
    Empty,
    /// HOST_CERT: the certificate bytes (PEM).
    HostCert(Bytes),
    /// FILE_INFO.
    FileInfo(FileInfo),
    /// PEER_INFO, PING_PEERS or a delivered P2P_REQUEST.
    PeerInfo(PeerInfo),
    /// MY_INFO.
    MyInfo(MyInfo),
    /// PEER_STAT.
    PeerStat(PeerStat),
    /// SESSION_ID, P2P_OPEN or P2P_CLOSE.
    SessionId(SessionId),
    /// BYTES.
    Bytes(Bytes),
    /// NEW_CMD.
    NewCmd(NewCmd),
    /// CMD_ID.
    CmdId(CmdId),
    /// HOST_VER.
    HostVer(Version),
    /// PRIV_IPC, PUB_IPC or PUB_IPC_WITH_FEEDBACK.
    AsyncRequest(AsyncRequest),
    /// CH_MEMBER_INFO.
    ChMemberInfo(ChMemberInfo),
    /// CH_ID.
    ChId(u64),
    /// A type id with no known layout, kept raw.
    Unknown(Bytes),
}

impl Payload {
    /// Parses `bytes` with the layout of `type_id`.
    ///
    /// # Errors
    /// Whatever the layout's parser reports; a non-empty payload on an empty type is
    /// [`Error::Invalid`].
    pub fn parse(type_id: TypeId, bytes: &[u8]) -> Result<Self> {
        Ok(match type_id {
            TypeId::GEN_FILE => Self::GenFile(Bytes::copy_from_slice(bytes)),
            TypeId::TEXT | TypeId::ERR | TypeId::PRIV_TEXT | TypeId::BIG_TEXT => {
                Self::Text(text::decode(bytes))
            }
            TypeId::IDLE
            | TypeId::TERM_CMD
            | TypeId::KILL_CMD
            | TypeId::HALT_CMD
            | TypeId::RESUME_CMD => {
                if !bytes.is_empty() {
                    return Err(Error::Invalid {
                        what: "control frame",
                        why: format!("{type_id:?} carries no payload, got {} bytes", bytes.len()),
                    });
                }
                Self::Empty
            }
            TypeId::HOST_CERT => Self::HostCert(Bytes::copy_from_slice(bytes)),
            TypeId::FILE_INFO => Self::FileInfo(FileInfo::parse(bytes)?),
            TypeId::PEER_INFO | TypeId::PING_PEERS | TypeId::P2P_REQUEST => {
                Self::PeerInfo(PeerInfo::parse(bytes)?)
            }
            TypeId::MY_INFO => Self::MyInfo(MyInfo::parse(bytes)?),
            TypeId::PEER_STAT => Self::PeerStat(PeerStat::parse(bytes)?),
            TypeId::SESSION_ID | TypeId::P2P_OPEN | TypeId::P2P_CLOSE => {
                Self::SessionId(SessionId::parse(bytes)?)
            }
            TypeId::BYTES => Self::Bytes(Bytes::copy_from_slice(bytes)),
            TypeId::NEW_CMD => Self::NewCmd(NewCmd::parse(bytes)?),
            TypeId::CMD_ID => Self::CmdId(parse_cmd_id(bytes)?),
            TypeId::HOST_VER => Self::HostVer(Version::parse(bytes)?),
            TypeId::PRIV_IPC | TypeId::PUB_IPC | TypeId::PUB_IPC_WITH_FEEDBACK => {
                Self::AsyncRequest(AsyncRequest::parse(bytes)?)
            }
            TypeId::CH_MEMBER_INFO => Self::ChMemberInfo(ChMemberInfo::parse(bytes)?),
            TypeId::CH_ID => Self::ChId(parse_ch_id(bytes)?),
            _ => Self::Unknown(Bytes::copy_from_slice(bytes)),
        })
    }

    /// Appends the payload's bytes. Text is written as UTF-16LE.
    pub fn write(&self, dst: &mut BytesMut) {
        match self {
            Self::GenFile(b) | Self::HostCert(b) | Self::Bytes(b) | Self::Unknown(b) => {
                dst.extend_from_slice(b)
            }
            Self::Text(s) => text::write(s, dst),
            Self::Empty => {}
            Self::FileInfo(v) => v.write(dst),
            Self::PeerInfo(v) => v.write(dst),
            Self::MyInfo(v) => v.write(dst),
            Self::PeerStat(v) => v.write(dst),
            Self::SessionId(v) => dst.extend_from_slice(&v.0),
            Self::NewCmd(v) => v.write(dst),
            Self::CmdId(v) => write_cmd_id(*v, dst),
            Self::HostVer(v) => v.write(dst),
            Self::AsyncRequest(v) => v.write(dst),
            Self::ChMemberInfo(v) => v.write(dst),
            Self::ChId(v) => write_ch_id(*v, dst),
        }
    }

    /// The payload's bytes.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.write(&mut out);
        out.freeze()
    }
}

#[cfg(test)]
mod tests;

//! Typed payloads of the 43 seed async commands (PROTOCOL.md §4.3), parsed from and written to
//! the bytes that follow the async id (a module's `[u16 id][data]`, or a frame to a client on
//! the async id).
//!
//! Formats: TEXT argument lines in the seed's key order (§8; strings quoted, numbers bare),
//! with the routing ids §9 item 2 adds (`-ch_id`, `-sub_id`) kept optional when the seed's
//! form lacks them; raw binary forms for casts, peer messages and ids (§4.1 table).
//!
//! Invariant: `AsyncCmd::parse(cmd.id(), &cmd.to_bytes())` returns `cmd`; parsing never panics.

use bytes::{BufMut, Bytes, BytesMut};

use crate::args::{Args, ArgsBuilder};
use crate::async_id::AsyncId;
use crate::error::{Error, Result};
use crate::ids::{CmdId, SessionId, SubChList, UserId};
use crate::payload::{NewCmd, parse_cmd_id};
use crate::text;
use crate::type_id::TypeId;

/// A typed frame carried inside a cast, a peer message or a P2P message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Embedded {
    /// The embedded frame's type.
    pub type_id: TypeId,
    /// The embedded frame's payload.
    pub data: Bytes,
}

/// One async command with its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // Field names are the seed's argument keys; each variant is documented.
pub enum AsyncCmd {
    /// 1: the session is ready (TEXT).
    Rdy { text: String },
    /// 2: a system message; its type (TEXT, ERR, HOST_CERT, MY_INFO) is the frame's.
    SysMsg { data: Bytes },
    /// 3: a module failure (ERR text).
    ExeCrash { text: String },
    /// 4: stop the host.
    Exit,
    /// 5: cast `[SUBCH_LIST][type][data]`.
    Cast { subs: SubChList, frame: Embedded },
    /// 6: new maximum number of sessions (u32).
    MaxSes { max: u32 },
    /// 7: log the session out.
    Logout,
    /// 8: the account with this user name was deleted (TEXT).
    UserDeleted { user: String },
    /// 9: `-src "old_group_name" -dst "new_group_name"`.
    GroupRenamed { src: String, dst: String },
    /// 10: `-name "new_display_name" -user "user_name"`.
    DispRenamed { name: String, user: String },
    /// 11: `-src "old_group" -dst "new_group"`.
    GrpTrans { src: String, dst: String },
    /// 12: `-user "user_name" -group "new_group"`.
    UserGroupChanged { user: String, group: String },
    /// 13: the command-rank table changed.
    CmdRanksChanged,
    /// 14: restart the host.
    Restart,
    /// 15: a module executable path was enabled (TEXT).
    EnableMod { path: String },
    /// 16: a module executable path was disabled (TEXT).
    DisableMod { path: String },
    /// 17: `-name "group_name" -rank 2`.
    GroupUpdated { name: String, rank: u32 },
    /// 18: end the session.
    EndSession,
    /// 19: the session logged in as this user id.
    UserLogin { user_id: UserId },
    /// 20: reserved (crash recovery).
    RestoreAuth { user_id: UserId },
    /// 21: `[SID dst][type][data]`.
    ToPeer { dst: SessionId, frame: Embedded },
    /// 22: as CAST, only to sessions with active updates.
    LimitedCast { subs: SubChList, frame: Embedded },
    /// 23: re-read this user's account and resend MY_INFO (TEXT user name).
    RwMyInfo { user: String },
    /// 24: `[SID dst][SID src][type][data]`.
    P2p {
        dst: SessionId,
        src: SessionId,
        frame: Embedded,
    },
    /// 25: the session with this id is going away.
    CloseP2p { sid: SessionId },
    /// 26: `-user "u" -ch_name "c" -ch_id 334 -level 1`.
    NewChMember {
        user: String,
        ch_name: String,
        ch_id: u64,
        level: u8,
    },
    /// 27: `-ch_name "c" -ch_id 426`.
    DelCh { ch_name: String, ch_id: u64 },
    /// 28: `-ch_name "old" -new_name "new"` (+ `-ch_id`).
    RenameCh {
        ch_name: String,
        new_name: String,
        ch_id: Option<u64>,
    },
    /// 29: `-ch_name "c" -sub_name "s" -state 1` (+ `-ch_id`, `-sub_id`).
    ChActFlag {
        ch_name: String,
        sub_name: String,
        state: bool,
        ch_id: Option<u64>,
        sub_id: Option<u8>,
    },
    /// 30: `-ch_name "c" -sub_name "s" -ch_id 987 -sub_id 5 -level 2`.
    NewSubCh {
        ch_name: String,
        sub_name: String,
        ch_id: u64,
        sub_id: u8,
        level: u8,
    },
    /// 31: `-ch_name "c" -sub_name "s" -ch_id 987 -sub_id 5`.
    RmSubCh {
        ch_name: String,
        sub_name: String,
        ch_id: u64,
        sub_id: u8,
    },
    /// 32: `-ch_name "c" -sub_name "s" -new_name "n"` (+ `-ch_id`, `-sub_id`).
    RenameSubCh {
        ch_name: String,
        sub_name: String,
        new_name: String,
        ch_id: Option<u64>,
        sub_id: Option<u8>,
    },
    /// 33: `-ch_name "c" -user "u"` (+ `-ch_id`).
    InvitedToCh {
        ch_name: String,
        user: String,
        ch_id: Option<u64>,
    },
    /// 34: `-ch_name "c" -user "u" -ch_id 746`.
    RmChMember {
        ch_name: String,
        user: String,
        ch_id: u64,
    },
    /// 35: `-ch_name "c" -user "u"` (+ `-ch_id`).
    InviteAccepted {
        ch_name: String,
        user: String,
        ch_id: Option<u64>,
    },
    /// 36: `-ch_name "c" -user "u" -ch_id 774 -level 2`.
    MemLevelChanged {
        ch_name: String,
        user: String,
        ch_id: u64,
        level: u8,
    },
    /// 37: `-ch_name "c" -sub_name "s" -level 3 -ch_id 645 -sub_id 5`.
    SubChLevelChg {
        ch_name: String,
        sub_name: String,
        level: u8,
        ch_id: u64,
        sub_id: u8,
    },
    /// 38: `-ch_name "c" -sub_id 5 -level 4` (+ `-ch_id`).
    AddRdonly {
        ch_name: String,
        sub_id: u8,
        level: u8,
        ch_id: Option<u64>,
    },
    /// 39: same format as 38.
    RmRdonly {
        ch_name: String,
        sub_id: u8,
        level: u8,
        ch_id: Option<u64>,
    },
    /// 40: a command was loaded.
    AddCmd { cmd: NewCmd },
    /// 41: a command was unloaded.
    RmCmd { cmd_id: CmdId },
    /// 42: `-old "old_user_name" -new_name "new_user_name"`.
    UserRenamed { old: String, new_name: String },
    /// 43: only public commands until login.
    PublicAuth,
}

fn args(data: &[u8]) -> Args {
    Args::parse(&text::decode(data))
}

fn string(a: &Args, key: &str) -> Result<String> {
    a.value(key)
        .map(str::to_owned)
        .ok_or_else(|| Error::Invalid {
            what: "async payload",
            why: format!("{key} is missing"),
        })
}

fn small<T: TryFrom<u64>>(a: &Args, key: &str) -> Result<T> {
    T::try_from(a.u64(key)?).map_err(|_| Error::Invalid {
        what: "async payload",
        why: format!("{key} is out of range"),
    })
}

fn small_opt<T: TryFrom<u64>>(a: &Args, key: &str) -> Result<Option<T>> {
    if a.has(key) {
        small(a, key).map(Some)
    } else {
        Ok(None)
    }
}

fn embedded(bytes: &[u8], what: &'static str) -> Result<Embedded> {
    let (t, data) = bytes.split_first().ok_or(Error::Truncated { what })?;
    Ok(Embedded {
        type_id: TypeId(*t),
        data: Bytes::copy_from_slice(data),
    })
}

fn split<'a>(bytes: &'a [u8], n: usize, what: &'static str) -> Result<(&'a [u8], &'a [u8])> {
    bytes.split_at_checked(n).ok_or(Error::Truncated { what })
}

fn empty(bytes: &[u8], cmd: AsyncCmd) -> Result<AsyncCmd> {
    if bytes.is_empty() {
        Ok(cmd)
    } else {
        Err(Error::Invalid {
            what: "async payload",
            why: format!("{:?} carries no payload", cmd.id()),
        })
    }
}

impl AsyncCmd {
    /// Parses the payload of async command `id`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an undefined id, a missing key or a bad number; size errors for
    /// binary forms.
    pub fn parse(id: AsyncId, data: &[u8]) -> Result<Self> {
        let a = || args(data);
        let uid = |d: &[u8]| UserId::parse(d);
        Ok(match id {
            AsyncId::RDY => Self::Rdy {
                text: text::decode(data),
            },
            AsyncId::SYS_MSG => Self::SysMsg {
                data: Bytes::copy_from_slice(data),
            },
            AsyncId::EXE_CRASH => Self::ExeCrash {
                text: text::decode(data),
            },
            AsyncId::EXIT => empty(data, Self::Exit)?,
            AsyncId::CAST | AsyncId::LIMITED_CAST => {
                let (list, rest) = split(data, SubChList::LEN, "cast")?;
                let subs = SubChList::parse(list)?;
                let frame = embedded(rest, "cast")?;
                if id == AsyncId::CAST {
                    Self::Cast { subs, frame }
                } else {
                    Self::LimitedCast { subs, frame }
                }
            }
            AsyncId::MAXSES => {
                let raw = <[u8; 4]>::try_from(data).map_err(|_| Error::BadLength {
                    what: "ASYNC_MAXSES",
                    expected: 4,
                    got: data.len(),
                })?;
                Self::MaxSes {
                    max: u32::from_le_bytes(raw),
                }
            }
            AsyncId::LOGOUT => empty(data, Self::Logout)?,
            AsyncId::USER_DELETED => Self::UserDeleted {
                user: text::decode(data),
            },
            AsyncId::GROUP_RENAMED => Self::GroupRenamed {
                src: string(&a(), "-src")?,
                dst: string(&a(), "-dst")?,
            },
            AsyncId::DISP_RENAMED => Self::DispRenamed {
                name: string(&a(), "-name")?,
                user: string(&a(), "-user")?,
            },
            AsyncId::GRP_TRANS => Self::GrpTrans {
                src: string(&a(), "-src")?,
                dst: string(&a(), "-dst")?,
            },
            AsyncId::USER_GROUP_CHANGED => Self::UserGroupChanged {
                user: string(&a(), "-user")?,
                group: string(&a(), "-group")?,
            },
            AsyncId::CMD_RANKS_CHANGED => empty(data, Self::CmdRanksChanged)?,
            AsyncId::RESTART => empty(data, Self::Restart)?,
            AsyncId::ENABLE_MOD => Self::EnableMod {
                path: text::decode(data),
            },
            AsyncId::DISABLE_MOD => Self::DisableMod {
                path: text::decode(data),
            },
            AsyncId::GROUP_UPDATED => Self::GroupUpdated {
                name: string(&a(), "-name")?,
                rank: small(&a(), "-rank")?,
            },
            AsyncId::END_SESSION => empty(data, Self::EndSession)?,
            AsyncId::USER_LOGIN => Self::UserLogin {
                user_id: uid(data)?,
            },
            AsyncId::RESTORE_AUTH => Self::RestoreAuth {
                user_id: uid(data)?,
            },
            AsyncId::TO_PEER => {
                let (dst, rest) = split(data, SessionId::LEN, "ASYNC_TO_PEER")?;
                Self::ToPeer {
                    dst: SessionId::parse(dst)?,
                    frame: embedded(rest, "ASYNC_TO_PEER")?,
                }
            }
            AsyncId::RW_MY_INFO => Self::RwMyInfo {
                user: text::decode(data),
            },
            AsyncId::P2P => {
                let (dst, rest) = split(data, SessionId::LEN, "ASYNC_P2P")?;
                let (src, rest) = split(rest, SessionId::LEN, "ASYNC_P2P")?;
                Self::P2p {
                    dst: SessionId::parse(dst)?,
                    src: SessionId::parse(src)?,
                    frame: embedded(rest, "ASYNC_P2P")?,
                }
            }
            AsyncId::CLOSE_P2P => Self::CloseP2p {
                sid: SessionId::parse(data)?,
            },
            AsyncId::PUBLIC_AUTH => empty(data, Self::PublicAuth)?,
            AsyncId::ADD_CMD => Self::AddCmd {
                cmd: NewCmd::parse(data)?,
            },
            AsyncId::RM_CMD => Self::RmCmd {
                cmd_id: parse_cmd_id(data)?,
            },
            _ => Self::parse_channel(id, &a())?,
        })
    }

    fn parse_channel(id: AsyncId, a: &Args) -> Result<Self> {
        let ch_name = || string(a, "-ch_name");
        let sub_name = || string(a, "-sub_name");
        let user = || string(a, "-user");
        Ok(match id {
            AsyncId::NEW_CH_MEMBER => Self::NewChMember {
                user: user()?,
                ch_name: ch_name()?,
                ch_id: a.u64("-ch_id")?,
                level: small(a, "-level")?,
            },
            AsyncId::DEL_CH => Self::DelCh {
                ch_name: ch_name()?,
                ch_id: a.u64("-ch_id")?,
            },
            AsyncId::RENAME_CH => Self::RenameCh {
                ch_name: ch_name()?,
                new_name: string(a, "-new_name")?,
                ch_id: a.u64_opt("-ch_id")?,
            },
            AsyncId::CH_ACT_FLAG => Self::ChActFlag {
                ch_name: ch_name()?,
                sub_name: sub_name()?,
                state: a.u64("-state")? != 0,
                ch_id: a.u64_opt("-ch_id")?,
                sub_id: small_opt(a, "-sub_id")?,
            },
            AsyncId::NEW_SUB_CH => Self::NewSubCh {
                ch_name: ch_name()?,
                sub_name: sub_name()?,
                ch_id: a.u64("-ch_id")?,
                sub_id: small(a, "-sub_id")?,
                level: small(a, "-level")?,
            },
            AsyncId::RM_SUB_CH => Self::RmSubCh {
                ch_name: ch_name()?,
                sub_name: sub_name()?,
                ch_id: a.u64("-ch_id")?,
                sub_id: small(a, "-sub_id")?,
            },
            AsyncId::RENAME_SUB_CH => Self::RenameSubCh {
                ch_name: ch_name()?,
                sub_name: sub_name()?,
                new_name: string(a, "-new_name")?,
                ch_id: a.u64_opt("-ch_id")?,
                sub_id: small_opt(a, "-sub_id")?,
            },
            AsyncId::INVITED_TO_CH => Self::InvitedToCh {
                ch_name: ch_name()?,
                user: user()?,
                ch_id: a.u64_opt("-ch_id")?,
            },
            AsyncId::RM_CH_MEMBER => Self::RmChMember {
                ch_name: ch_name()?,
                user: user()?,
                ch_id: a.u64("-ch_id")?,
            },
            AsyncId::INVITE_ACCEPTED => Self::InviteAccepted {
                ch_name: ch_name()?,
                user: user()?,
                ch_id: a.u64_opt("-ch_id")?,
            },
            AsyncId::MEM_LEVEL_CHANGED => Self::MemLevelChanged {
                ch_name: ch_name()?,
                user: user()?,
                ch_id: a.u64("-ch_id")?,
                level: small(a, "-level")?,
            },
            AsyncId::SUB_CH_LEVEL_CHG => Self::SubChLevelChg {
                ch_name: ch_name()?,
                sub_name: sub_name()?,
                level: small(a, "-level")?,
                ch_id: a.u64("-ch_id")?,
                sub_id: small(a, "-sub_id")?,
            },
            AsyncId::ADD_RDONLY | AsyncId::RM_RDONLY => {
                let (ch_name, sub_id, level, ch_id) = (
                    ch_name()?,
                    small(a, "-sub_id")?,
                    small(a, "-level")?,
                    a.u64_opt("-ch_id")?,
                );
                if id == AsyncId::ADD_RDONLY {
                    Self::AddRdonly {
                        ch_name,
                        sub_id,
                        level,
                        ch_id,
                    }
                } else {
                    Self::RmRdonly {
                        ch_name,
                        sub_id,
                        level,
                        ch_id,
                    }
                }
            }
            AsyncId::USER_RENAMED => Self::UserRenamed {
                old: string(a, "-old")?,
                new_name: string(a, "-new_name")?,
            },
            other => {
                return Err(Error::Invalid {
                    what: "async id",
                    why: format!("{} is not a seed async id", other.0),
                });
            }
        })
    }

    /// The async id this payload belongs to.
    pub fn id(&self) -> AsyncId {
        match self {
            Self::Rdy { .. } => AsyncId::RDY,
            Self::SysMsg { .. } => AsyncId::SYS_MSG,
            Self::ExeCrash { .. } => AsyncId::EXE_CRASH,
            Self::Exit => AsyncId::EXIT,
            Self::Cast { .. } => AsyncId::CAST,
            Self::MaxSes { .. } => AsyncId::MAXSES,
            Self::Logout => AsyncId::LOGOUT,
            Self::UserDeleted { .. } => AsyncId::USER_DELETED,
            Self::GroupRenamed { .. } => AsyncId::GROUP_RENAMED,
            Self::DispRenamed { .. } => AsyncId::DISP_RENAMED,
            Self::GrpTrans { .. } => AsyncId::GRP_TRANS,
            Self::UserGroupChanged { .. } => AsyncId::USER_GROUP_CHANGED,
            Self::CmdRanksChanged => AsyncId::CMD_RANKS_CHANGED,
            Self::Restart => AsyncId::RESTART,
            Self::EnableMod { .. } => AsyncId::ENABLE_MOD,
            Self::DisableMod { .. } => AsyncId::DISABLE_MOD,
            Self::GroupUpdated { .. } => AsyncId::GROUP_UPDATED,
            Self::EndSession => AsyncId::END_SESSION,
            Self::UserLogin { .. } => AsyncId::USER_LOGIN,
            Self::RestoreAuth { .. } => AsyncId::RESTORE_AUTH,
            Self::ToPeer { .. } => AsyncId::TO_PEER,
            Self::LimitedCast { .. } => AsyncId::LIMITED_CAST,
            Self::RwMyInfo { .. } => AsyncId::RW_MY_INFO,
            Self::P2p { .. } => AsyncId::P2P,
            Self::CloseP2p { .. } => AsyncId::CLOSE_P2P,
            Self::NewChMember { .. } => AsyncId::NEW_CH_MEMBER,
            Self::DelCh { .. } => AsyncId::DEL_CH,
            Self::RenameCh { .. } => AsyncId::RENAME_CH,
            Self::ChActFlag { .. } => AsyncId::CH_ACT_FLAG,
            Self::NewSubCh { .. } => AsyncId::NEW_SUB_CH,
            Self::RmSubCh { .. } => AsyncId::RM_SUB_CH,
            Self::RenameSubCh { .. } => AsyncId::RENAME_SUB_CH,
            Self::InvitedToCh { .. } => AsyncId::INVITED_TO_CH,
            Self::RmChMember { .. } => AsyncId::RM_CH_MEMBER,
            Self::InviteAccepted { .. } => AsyncId::INVITE_ACCEPTED,
            Self::MemLevelChanged { .. } => AsyncId::MEM_LEVEL_CHANGED,
            Self::SubChLevelChg { .. } => AsyncId::SUB_CH_LEVEL_CHG,
            Self::AddRdonly { .. } => AsyncId::ADD_RDONLY,
            Self::RmRdonly { .. } => AsyncId::RM_RDONLY,
            Self::AddCmd { .. } => AsyncId::ADD_CMD,
            Self::RmCmd { .. } => AsyncId::RM_CMD,
            Self::UserRenamed { .. } => AsyncId::USER_RENAMED,
            Self::PublicAuth => AsyncId::PUBLIC_AUTH,
        }
    }

    /// The payload bytes.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.write(&mut out);
        out.freeze()
    }

    /// Appends the payload bytes.
    pub fn write(&self, dst: &mut BytesMut) {
        match self {
            Self::Exit
            | Self::Logout
            | Self::CmdRanksChanged
            | Self::Restart
            | Self::EndSession
            | Self::PublicAuth => {}
            Self::SysMsg { data } => dst.put_slice(data),
            Self::Rdy { text: s }
            | Self::ExeCrash { text: s }
            | Self::UserDeleted { user: s }
            | Self::EnableMod { path: s }
            | Self::DisableMod { path: s }
            | Self::RwMyInfo { user: s } => text::write(s, dst),
            Self::Cast { subs, frame } | Self::LimitedCast { subs, frame } => {
                dst.put_slice(&subs.to_bytes());
                put_embedded(frame, dst);
            }
            Self::MaxSes { max } => dst.put_u32_le(*max),
            Self::UserLogin { user_id } | Self::RestoreAuth { user_id } => {
                dst.put_slice(&user_id.0)
            }
            Self::ToPeer { dst: to, frame } => {
                dst.put_slice(&to.0);
                put_embedded(frame, dst);
            }
            Self::P2p {
                dst: to,
                src,
                frame,
            } => {
                dst.put_slice(&to.0);
                dst.put_slice(&src.0);
                put_embedded(frame, dst);
            }
            Self::CloseP2p { sid } => dst.put_slice(&sid.0),
            Self::AddCmd { cmd } => cmd.write(dst),
            Self::RmCmd { cmd_id } => dst.put_u16_le(cmd_id.0),
            other => text::write(&other.args_line(), dst),
        }
    }

    /// The argument line of a TEXT-argument payload (empty for the others).
    fn args_line(&self) -> String {
        let b = ArgsBuilder::new();
        let opt = |b: ArgsBuilder, key: &str, v: Option<u64>| match v {
            Some(v) => b.arg(key, v),
            None => b,
        };
        match self {
            Self::GroupRenamed { src, dst } | Self::GrpTrans { src, dst } => {
                b.arg("-src", src).arg("-dst", dst)
            }
            Self::DispRenamed { name, user } => b.arg("-name", name).arg("-user", user),
            Self::UserGroupChanged { user, group } => b.arg("-user", user).arg("-group", group),
            Self::GroupUpdated { name, rank } => b.arg("-name", name).arg("-rank", *rank),
            Self::NewChMember {
                user,
                ch_name,
                ch_id,
                level,
            } => b
                .arg("-user", user)
                .arg("-ch_name", ch_name)
                .arg("-ch_id", *ch_id)
                .arg("-level", *level),
            Self::DelCh { ch_name, ch_id } => b.arg("-ch_name", ch_name).arg("-ch_id", *ch_id),
            Self::RenameCh {
                ch_name,
                new_name,
                ch_id,
            } => opt(
                b.arg("-ch_name", ch_name).arg("-new_name", new_name),
                "-ch_id",
                *ch_id,
            ),
            Self::ChActFlag {
                ch_name,
                sub_name,
                state,
                ch_id,
                sub_id,
            } => {
                let b = b
                    .arg("-ch_name", ch_name)
                    .arg("-sub_name", sub_name)
                    .arg("-state", u8::from(*state));
                opt(opt(b, "-ch_id", *ch_id), "-sub_id", sub_id.map(u64::from))
            }
            Self::NewSubCh {
                ch_name,
                sub_name,
                ch_id,
                sub_id,
                level,
            } => b
                .arg("-ch_name", ch_name)
                .arg("-sub_name", sub_name)
                .arg("-ch_id", *ch_id)
                .arg("-sub_id", *sub_id)
                .arg("-level", *level),
            Self::RmSubCh {
                ch_name,
                sub_name,
                ch_id,
                sub_id,
            } => b
                .arg("-ch_name", ch_name)
                .arg("-sub_name", sub_name)
                .arg("-ch_id", *ch_id)
                .arg("-sub_id", *sub_id),
            Self::RenameSubCh {
                ch_name,
                sub_name,
                new_name,
                ch_id,
                sub_id,
            } => {
                let b = b
                    .arg("-ch_name", ch_name)
                    .arg("-sub_name", sub_name)
                    .arg("-new_name", new_name);
                opt(opt(b, "-ch_id", *ch_id), "-sub_id", sub_id.map(u64::from))
            }
            Self::InvitedToCh {
                ch_name,
                user,
                ch_id,
            }
            | Self::InviteAccepted {
                ch_name,
                user,
                ch_id,
            } => opt(
                b.arg("-ch_name", ch_name).arg("-user", user),
                "-ch_id",
                *ch_id,
            ),
            Self::RmChMember {
                ch_name,
                user,
                ch_id,
            } => b
                .arg("-ch_name", ch_name)
                .arg("-user", user)
                .arg("-ch_id", *ch_id),
            Self::MemLevelChanged {
                ch_name,
                user,
                ch_id,
                level,
            } => b
                .arg("-ch_name", ch_name)
                .arg("-user", user)
                .arg("-ch_id", *ch_id)
                .arg("-level", *level),
            Self::SubChLevelChg {
                ch_name,
                sub_name,
                level,
                ch_id,
                sub_id,
            } => b
                .arg("-ch_name", ch_name)
                .arg("-sub_name", sub_name)
                .arg("-level", *level)
                .arg("-ch_id", *ch_id)
                .arg("-sub_id", *sub_id),
            Self::AddRdonly {
                ch_name,
                sub_id,
                level,
                ch_id,
            }
            | Self::RmRdonly {
                ch_name,
                sub_id,
                level,
                ch_id,
            } => opt(
                b.arg("-ch_name", ch_name)
                    .arg("-sub_id", *sub_id)
                    .arg("-level", *level),
                "-ch_id",
                *ch_id,
            ),
            Self::UserRenamed { old, new_name } => b.arg("-old", old).arg("-new_name", new_name),
            _ => b,
        }
        .build()
    }
}

fn put_embedded(frame: &Embedded, dst: &mut BytesMut) {
    dst.put_u8(frame.type_id.0);
    dst.put_slice(&frame.data);
}

#[cfg(test)]
mod tests;

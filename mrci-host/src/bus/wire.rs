//! The bytes nodes of a cluster send each other over NATS: every [`Event`], [`Cast`] and
//! node message as a compact little-endian encoding, and its decoder.
//!
//! Invariant: decoding never panics and never trusts a length before checking it against
//! the bytes left; a message from another node that does not decode is counted and dropped
//! by the caller, never half-applied.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use mrci_proto::{SessionId, SubChList, TypeId, UserId, async_id::AsyncId};

use super::{Cast, ChEffect, Event, GroupChange, P2pKind};

/// Where a delivery goes, on the node that receives it (the sender already delivered to its
/// own sessions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// [`super::Bus::cast`].
    Cast {
        /// The sub-channels cast to.
        header: SubChList,
        /// Active sessions only.
        limited: bool,
    },
    /// [`super::Bus::to_peer`].
    Peer(SessionId),
    /// [`super::Bus::to_session`].
    Session(SessionId),
    /// [`super::Bus::to_user`].
    User(UserId),
    /// [`super::Bus::to_members`].
    Members(Vec<u64>, UserId),
    /// [`super::Bus::to_channel`].
    Channel(u64, Option<UserId>),
    /// [`super::Bus::broadcast`]: every session of the receiving node.
    All,
}

/// What a delivery carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// An event.
    Event(Event),
    /// A cast or peer data.
    Cast(WireCast),
}

/// A [`Cast`] that can be cloned and compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireCast {
    /// The async id.
    pub id: AsyncId,
    /// The sender.
    pub src: SessionId,
    /// The embedded frame type.
    pub type_id: TypeId,
    /// The payload.
    pub payload: Bytes,
}

impl From<&Cast> for WireCast {
    fn from(c: &Cast) -> Self {
        Self {
            id: c.id,
            src: c.src,
            type_id: c.type_id,
            payload: c.payload.clone(),
        }
    }
}

impl From<WireCast> for Cast {
    fn from(c: WireCast) -> Self {
        Self {
            id: c.id,
            src: c.src,
            type_id: c.type_id,
            payload: c.payload,
        }
    }
}

/// One message between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Msg {
    /// A delivery; `(origin, seq)` identifies it so a node that receives it on several of
    /// its subjects applies it once.
    Deliver {
        /// The sending node's instance (random per process start).
        origin: u64,
        /// The sender's sequence number.
        seq: u64,
        /// Where it goes.
        route: Route,
        /// What it carries.
        body: Body,
    },
    /// A node's heartbeat: its name, instance and sessions; `leaving` on a clean shutdown.
    Heartbeat(Beat),
    /// A session registered (`up`) on or left a node.
    Presence {
        /// The node's instance.
        instance: u64,
        /// The node's name.
        node: String,
        /// The session.
        sid: SessionId,
        /// Registered or gone.
        up: bool,
    },
    /// Node `node`: send a full heartbeat (a receiver's digest of its state did not match).
    Resync {
        /// The node asked.
        node: String,
    },
    /// What a session of a node would tell its sub-channel peers when it left: the
    /// sub-channels it has open while it takes active updates (empty otherwise), so that the
    /// other nodes can send its PEER_STAT if the node dies.
    Open {
        /// The node's instance.
        instance: u64,
        /// The node's name.
        node: String,
        /// The session.
        sid: SessionId,
        /// Its open sub-channels, or an empty list when it is not active.
        open: SubChList,
    },
}

/// A node's heartbeat. Most beats are short: counts and a [`digest`] of the node's sessions
/// and open lists, which the receivers compare with the digest of what presence messages
/// told them; a mismatch asks for a full beat ([`Msg::Resync`]). A full beat (`full`) also
/// lists every session and open list; a node sends one on request, every few dozen beats,
/// and when it leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Beat {
    /// The node's name.
    pub node: String,
    /// Random per process start.
    pub instance: u64,
    /// Sessions registered.
    pub sessions_count: u32,
    /// Sessions logged in.
    pub logged_in: u32,
    /// Deliveries to other nodes that could not be published.
    pub undelivered: u64,
    /// True on a clean shutdown: the node is gone.
    pub leaving: bool,
    /// [`digest`] of the sessions and open lists.
    pub digest: u64,
    /// True when `sessions` and `open` are the node's whole state; empty otherwise.
    pub full: bool,
    /// Every registered session (a full beat).
    pub sessions: Vec<SessionId>,
    /// The sessions with a non-empty [`Msg::Open`] list, and that list (a full beat).
    pub open: Vec<(SessionId, SubChList)>,
}

/// An order-independent digest of a node's sessions and their non-empty open lists: equal
/// states give equal digests on every node and build, whatever the iteration order.
pub(crate) fn digest(
    sessions: impl IntoIterator<Item = SessionId>,
    open: impl IntoIterator<Item = (SessionId, SubChList)>,
) -> u64 {
    let mut sum = 0u64;
    for sid in sessions {
        sum = sum.wrapping_add(mix(1, &[&sid.0]));
    }
    for (sid, list) in open {
        sum = sum.wrapping_add(mix(2, &[&sid.0, &list.to_bytes()]));
    }
    sum
}

/// FNV-1a over `tag` and `parts` in order, finished with the splitmix64 mixer so that the
/// sum of many entries stays well spread.
fn mix(tag: u8, parts: &[&[u8]]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64;
    for b in std::iter::once(&tag).chain(parts.iter().flat_map(|p| p.iter())) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Why bytes did not decode.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BadMsg;

/// Encodes a message.
pub(crate) fn encode(msg: &Msg) -> Bytes {
    let mut b = BytesMut::with_capacity(128);
    match msg {
        Msg::Deliver {
            origin,
            seq,
            route,
            body,
        } => {
            b.put_u8(1);
            b.put_u64_le(*origin);
            b.put_u64_le(*seq);
            put_route(&mut b, route);
            match body {
                Body::Event(e) => {
                    b.put_u8(0);
                    put_event(&mut b, e);
                }
                Body::Cast(c) => {
                    b.put_u8(1);
                    b.put_u8(c.id.0);
                    b.put_slice(&c.src.0);
                    b.put_u8(c.type_id.0);
                    put_bytes(&mut b, &c.payload);
                }
            }
        }
        Msg::Heartbeat(beat) => {
            b.put_u8(2);
            put_str(&mut b, &beat.node);
            b.put_u64_le(beat.instance);
            b.put_u32_le(beat.sessions_count);
            b.put_u32_le(beat.logged_in);
            b.put_u64_le(beat.undelivered);
            b.put_u8(u8::from(beat.leaving));
            b.put_u64_le(beat.digest);
            b.put_u8(u8::from(beat.full));
            b.put_u32_le(beat.sessions.len() as u32);
            for sid in &beat.sessions {
                b.put_slice(&sid.0);
            }
            b.put_u32_le(beat.open.len() as u32);
            for (sid, open) in &beat.open {
                b.put_slice(&sid.0);
                b.put_slice(&open.to_bytes());
            }
        }
        Msg::Presence {
            instance,
            node,
            sid,
            up,
        } => {
            b.put_u8(3);
            b.put_u64_le(*instance);
            put_str(&mut b, node);
            b.put_slice(&sid.0);
            b.put_u8(u8::from(*up));
        }
        Msg::Open {
            instance,
            node,
            sid,
            open,
        } => {
            b.put_u8(4);
            b.put_u64_le(*instance);
            put_str(&mut b, node);
            b.put_slice(&sid.0);
            b.put_slice(&open.to_bytes());
        }
        Msg::Resync { node } => {
            b.put_u8(5);
            put_str(&mut b, node);
        }
    }
    b.freeze()
}

/// Decodes a message.
pub(crate) fn decode(bytes: &[u8]) -> Result<Msg, BadMsg> {
    let mut r = bytes;
    let msg = match u8_(&mut r)? {
        1 => {
            let origin = u64_(&mut r)?;
            let seq = u64_(&mut r)?;
            let route = get_route(&mut r)?;
            let body = match u8_(&mut r)? {
                0 => Body::Event(get_event(&mut r)?),
                1 => Body::Cast(WireCast {
                    id: AsyncId(u8_(&mut r)?),
                    src: SessionId(arr(&mut r)?),
                    type_id: TypeId(u8_(&mut r)?),
                    payload: bytes_(&mut r)?,
                }),
                _ => return Err(BadMsg),
            };
            Msg::Deliver {
                origin,
                seq,
                route,
                body,
            }
        }
        2 => {
            let node = str_(&mut r)?;
            let instance = u64_(&mut r)?;
            let sessions_count = u32_(&mut r)?;
            let logged_in = u32_(&mut r)?;
            let undelivered = u64_(&mut r)?;
            let leaving = bool_(&mut r)?;
            let digest = u64_(&mut r)?;
            let full = bool_(&mut r)?;
            let n = u32_(&mut r)? as usize;
            if n > r.len() / SessionId::LEN {
                return Err(BadMsg);
            }
            let mut sessions = Vec::with_capacity(n);
            for _ in 0..n {
                sessions.push(SessionId(arr(&mut r)?));
            }
            let n = u32_(&mut r)? as usize;
            if n > r.len() / (SessionId::LEN + SubChList::LEN) {
                return Err(BadMsg);
            }
            let mut open = Vec::with_capacity(n);
            for _ in 0..n {
                open.push((SessionId(arr(&mut r)?), sub_list(&mut r)?));
            }
            Msg::Heartbeat(Beat {
                node,
                instance,
                sessions_count,
                logged_in,
                undelivered,
                leaving,
                digest,
                full,
                sessions,
                open,
            })
        }
        3 => Msg::Presence {
            instance: u64_(&mut r)?,
            node: str_(&mut r)?,
            sid: SessionId(arr(&mut r)?),
            up: bool_(&mut r)?,
        },
        4 => Msg::Open {
            instance: u64_(&mut r)?,
            node: str_(&mut r)?,
            sid: SessionId(arr(&mut r)?),
            open: sub_list(&mut r)?,
        },
        5 => Msg::Resync {
            node: str_(&mut r)?,
        },
        _ => return Err(BadMsg),
    };
    if r.is_empty() { Ok(msg) } else { Err(BadMsg) }
}

fn sub_list(r: &mut &[u8]) -> Result<SubChList, BadMsg> {
    let raw: [u8; SubChList::LEN] = arr(r)?;
    SubChList::parse(&raw).map_err(|_| BadMsg)
}

fn put_route(b: &mut BytesMut, route: &Route) {
    match route {
        Route::Cast { header, limited } => {
            b.put_u8(0);
            b.put_slice(&header.to_bytes());
            b.put_u8(u8::from(*limited));
        }
        Route::Peer(sid) => {
            b.put_u8(1);
            b.put_slice(&sid.0);
        }
        Route::Session(sid) => {
            b.put_u8(2);
            b.put_slice(&sid.0);
        }
        Route::User(uid) => {
            b.put_u8(3);
            b.put_slice(&uid.0);
        }
        Route::Members(chs, uid) => {
            b.put_u8(4);
            put_u64s(b, chs);
            b.put_slice(&uid.0);
        }
        Route::Channel(ch, uid) => {
            b.put_u8(5);
            b.put_u64_le(*ch);
            put_opt_user(b, uid.as_ref());
        }
        Route::All => b.put_u8(6),
    }
}

fn get_route(r: &mut &[u8]) -> Result<Route, BadMsg> {
    Ok(match u8_(r)? {
        0 => Route::Cast {
            header: sub_list(r)?,
            limited: bool_(r)?,
        },
        1 => Route::Peer(SessionId(arr(r)?)),
        2 => Route::Session(SessionId(arr(r)?)),
        3 => Route::User(UserId(arr(r)?)),
        4 => Route::Members(get_u64s(r)?, UserId(arr(r)?)),
        5 => Route::Channel(u64_(r)?, get_opt_user(r)?),
        6 => Route::All,
        _ => return Err(BadMsg),
    })
}

fn put_event(b: &mut BytesMut, e: &Event) {
    match e {
        Event::SysMsg { text, is_err } => {
            b.put_u8(0);
            put_str(b, text);
            b.put_u8(u8::from(*is_err));
        }
        Event::Logout { notice } => {
            b.put_u8(1);
            match notice {
                Some(text) => {
                    b.put_u8(1);
                    put_str(b, text);
                }
                None => b.put_u8(0),
            }
        }
        Event::EndSession => b.put_u8(2),
        Event::CmdRanksChanged => b.put_u8(3),
        Event::AccountChanged { user_id } => {
            b.put_u8(4);
            b.put_slice(&user_id.0);
        }
        Event::UserRenamed {
            user_id,
            old,
            new_name,
        } => {
            b.put_u8(5);
            b.put_slice(&user_id.0);
            put_str(b, old);
            put_str(b, new_name);
        }
        Event::Group { group, change } => {
            b.put_u8(6);
            put_str(b, group);
            match change {
                GroupChange::Renamed(name) => {
                    b.put_u8(0);
                    put_str(b, name);
                }
                GroupChange::Transferred(name) => {
                    b.put_u8(1);
                    put_str(b, name);
                }
                GroupChange::Reranked(rank) => {
                    b.put_u8(2);
                    b.put_u32_le(*rank);
                }
            }
        }
        Event::Channel {
            id,
            text,
            ch,
            effect,
        } => {
            b.put_u8(7);
            b.put_u8(id.0);
            put_str(b, text);
            b.put_u64_le(*ch);
            match effect {
                ChEffect::Forward => b.put_u8(0),
                ChEffect::Joined { user } => {
                    b.put_u8(1);
                    b.put_slice(&user.0);
                }
                ChEffect::Left { user } => {
                    b.put_u8(2);
                    b.put_slice(&user.0);
                }
                ChEffect::LevelChanged { user } => {
                    b.put_u8(3);
                    b.put_slice(&user.0);
                }
                ChEffect::Deleted => b.put_u8(4),
                ChEffect::CloseSub { sub } => {
                    b.put_u8(5);
                    b.put_u8(*sub);
                }
                ChEffect::ActiveFlag { sub, on } => {
                    b.put_u8(6);
                    b.put_u8(*sub);
                    b.put_u8(u8::from(*on));
                }
            }
        }
        Event::P2p { src, kind, info } => {
            b.put_u8(8);
            b.put_slice(&src.0);
            b.put_u8(match kind {
                P2pKind::Request => 0,
                P2pKind::Open => 1,
                P2pKind::Close => 2,
            });
            put_bytes(b, info);
        }
        Event::ModulesChanged => b.put_u8(9),
        Event::CloseP2p { sid } => {
            b.put_u8(10);
            b.put_slice(&sid.0);
        }
        Event::AccountHint { user_name } => {
            b.put_u8(11);
            put_str(b, user_name);
        }
        Event::Banned { net } => {
            b.put_u8(12);
            put_str(b, &net.to_string());
        }
    }
}

fn get_event(r: &mut &[u8]) -> Result<Event, BadMsg> {
    Ok(match u8_(r)? {
        0 => Event::SysMsg {
            text: str_(r)?,
            is_err: bool_(r)?,
        },
        1 => Event::Logout {
            notice: if bool_(r)? { Some(str_(r)?) } else { None },
        },
        2 => Event::EndSession,
        3 => Event::CmdRanksChanged,
        4 => Event::AccountChanged {
            user_id: UserId(arr(r)?),
        },
        5 => Event::UserRenamed {
            user_id: UserId(arr(r)?),
            old: str_(r)?,
            new_name: str_(r)?,
        },
        6 => {
            let group = str_(r)?;
            let change = match u8_(r)? {
                0 => GroupChange::Renamed(str_(r)?),
                1 => GroupChange::Transferred(str_(r)?),
                2 => GroupChange::Reranked(u32_(r)?),
                _ => return Err(BadMsg),
            };
            Event::Group { group, change }
        }
        7 => {
            let id = AsyncId(u8_(r)?);
            let text = str_(r)?;
            let ch = u64_(r)?;
            let effect = match u8_(r)? {
                0 => ChEffect::Forward,
                1 => ChEffect::Joined {
                    user: UserId(arr(r)?),
                },
                2 => ChEffect::Left {
                    user: UserId(arr(r)?),
                },
                3 => ChEffect::LevelChanged {
                    user: UserId(arr(r)?),
                },
                4 => ChEffect::Deleted,
                5 => ChEffect::CloseSub { sub: u8_(r)? },
                6 => ChEffect::ActiveFlag {
                    sub: u8_(r)?,
                    on: bool_(r)?,
                },
                _ => return Err(BadMsg),
            };
            Event::Channel {
                id,
                text,
                ch,
                effect,
            }
        }
        8 => Event::P2p {
            src: SessionId(arr(r)?),
            kind: match u8_(r)? {
                0 => P2pKind::Request,
                1 => P2pKind::Open,
                2 => P2pKind::Close,
                _ => return Err(BadMsg),
            },
            info: bytes_(r)?,
        },
        9 => Event::ModulesChanged,
        10 => Event::CloseP2p {
            sid: SessionId(arr(r)?),
        },
        11 => Event::AccountHint {
            user_name: str_(r)?,
        },
        12 => Event::Banned {
            net: crate::store::IpNet::parse(&str_(r)?).map_err(|_| BadMsg)?,
        },
        _ => return Err(BadMsg),
    })
}

fn put_str(b: &mut BytesMut, s: &str) {
    put_bytes(b, s.as_bytes());
}

fn put_bytes(b: &mut BytesMut, s: &[u8]) {
    b.put_u32_le(s.len() as u32);
    b.put_slice(s);
}

fn put_u64s(b: &mut BytesMut, v: &[u64]) {
    b.put_u32_le(v.len() as u32);
    for x in v {
        b.put_u64_le(*x);
    }
}

fn put_opt_user(b: &mut BytesMut, uid: Option<&UserId>) {
    match uid {
        Some(uid) => {
            b.put_u8(1);
            b.put_slice(&uid.0);
        }
        None => b.put_u8(0),
    }
}

fn get_opt_user(r: &mut &[u8]) -> Result<Option<UserId>, BadMsg> {
    Ok(if bool_(r)? {
        Some(UserId(arr(r)?))
    } else {
        None
    })
}

fn need(r: &[u8], n: usize) -> Result<(), BadMsg> {
    if r.len() < n { Err(BadMsg) } else { Ok(()) }
}

fn u8_(r: &mut &[u8]) -> Result<u8, BadMsg> {
    need(r, 1)?;
    Ok(r.get_u8())
}

fn bool_(r: &mut &[u8]) -> Result<bool, BadMsg> {
    match u8_(r)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(BadMsg),
    }
}

fn u32_(r: &mut &[u8]) -> Result<u32, BadMsg> {
    need(r, 4)?;
    Ok(r.get_u32_le())
}

fn u64_(r: &mut &[u8]) -> Result<u64, BadMsg> {
    need(r, 8)?;
    Ok(r.get_u64_le())
}

fn arr<const N: usize>(r: &mut &[u8]) -> Result<[u8; N], BadMsg> {
    need(r, N)?;
    let mut out = [0u8; N];
    r.copy_to_slice(&mut out);
    Ok(out)
}

fn bytes_(r: &mut &[u8]) -> Result<Bytes, BadMsg> {
    let n = u32_(r)? as usize;
    need(r, n)?;
    let out = Bytes::copy_from_slice(&r[..n]);
    r.advance(n);
    Ok(out)
}

fn str_(r: &mut &[u8]) -> Result<String, BadMsg> {
    let raw = bytes_(r)?;
    String::from_utf8(raw.to_vec()).map_err(|_| BadMsg)
}

fn get_u64s(r: &mut &[u8]) -> Result<Vec<u64>, BadMsg> {
    let n = u32_(r)? as usize;
    if n > r.len() / 8 {
        return Err(BadMsg);
    }
    (0..n).map(|_| u64_(r)).collect()
}

#[cfg(test)]
mod tests;

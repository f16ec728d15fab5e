//! The session's own state ([`SessionView`]) and its publication ([`Published`]): the
//! snapshot commands read and the shared-memory segment modules read.
//!
//! Invariant: the session task is the only writer; every change is republished as a new
//! [`SessionView`] and mirrored into the session's shared-memory segment by
//! [`Published::publish`], the only place that does either.

use std::{net::IpAddr, sync::Arc};

use mrci_proto::{CmdId, SessionId, SubChKey, SubChList, UserId};
use tokio::sync::watch;

use super::{p2p::P2pLinks, render};

/// The logged-in account as the session knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserView {
    /// The account's id.
    pub user_id: UserId,
    /// Current user name.
    pub user_name: String,
    /// Current display name.
    pub display_name: String,
    /// Email address, empty if none.
    pub email: String,
    /// The user's group.
    pub group_name: String,
    /// The group's host rank (1 highest).
    pub host_rank: u32,
    /// Whether the email address is verified.
    pub email_verified: bool,
    /// When the account was created (unix seconds).
    pub created_at: i64,
}

/// A loaded command as commands such as `ls_cmds` see it.
#[derive(Debug, Clone)]
pub(crate) struct CmdSummary {
    /// The announced id.
    pub id: CmdId,
    /// The announced (unique) name.
    pub name: String,
    /// The definition.
    pub def: crate::cmd::CmdRef,
}

/// A snapshot of the session, published after every change.
#[derive(Debug, Clone)]
pub(crate) struct SessionView {
    /// The session id.
    pub sid: SessionId,
    /// The client's address.
    pub ip: IpAddr,
    /// The client's application name from its header.
    pub app: String,
    /// Whether the connection is encrypted.
    pub tls: bool,
    /// The logged-in user, if any.
    pub user: Option<UserView>,
    /// The channel owner override flag.
    pub owner_override: bool,
    /// The commands the session has announced, in id order.
    pub commands: Arc<[CmdSummary]>,
    /// Channels the user is a full member of.
    pub channels: Vec<u64>,
    /// Open sub-channels, in opening order (at most [`SubChList::SLOTS`]).
    pub open: Vec<OpenSub>,
    /// Whether the session takes limited casts (PEER_INFO, PEER_STAT, pings).
    pub active: bool,
    /// Peer-to-peer links and requests.
    pub p2p: P2pLinks,
    /// The file commands' working directory, relative to the file root (`fs_cd`).
    pub cwd: String,
}

/// One open sub-channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpenSub {
    /// The channel and sub-channel id.
    pub key: SubChKey,
    /// The session may cast to it (no read-only flag at its level).
    pub writable: bool,
    /// The sub-channel's active-update flag.
    pub active: bool,
}

impl SessionView {
    /// A view of a new, logged-out session.
    pub(crate) fn new(sid: SessionId, ip: IpAddr, app: String, tls: bool) -> Self {
        Self {
            sid,
            ip,
            app,
            tls,
            user: None,
            owner_override: false,
            commands: Arc::new([]),
            channels: Vec::new(),
            open: Vec::new(),
            active: false,
            p2p: P2pLinks::default(),
            cwd: String::new(),
        }
    }

    /// The host rank, 0 when logged out.
    pub(crate) fn rank(&self) -> u32 {
        self.user.as_ref().map_or(0, |u| u.host_rank)
    }

    /// The open list as it crosses the wire and shared memory.
    pub(crate) fn open_list(&self) -> SubChList {
        let mut list = SubChList::default();
        for sub in &self.open {
            list.insert(sub.key);
        }
        list
    }

    /// The writable list: the cast header.
    pub(crate) fn writable_list(&self) -> SubChList {
        let mut list = SubChList::default();
        for sub in self.open.iter().filter(|s| s.writable) {
            list.insert(sub.key);
        }
        list
    }
}

/// Where a session's view is published: the watch commands read, and the shared-memory
/// segment modules read.
///
/// The segment is made the first time a module needs its key (a listing or a module
/// command), then mirrored on every publication: a session that never meets a module never
/// has one.
pub(crate) struct Published {
    tx: watch::Sender<Arc<SessionView>>,
    shm: Segment,
}

/// The session's segment, made on first use.
enum Segment {
    /// Not needed yet.
    NotYet,
    /// Made and mirrored.
    Made(mrci_shm::SessionShm),
    /// Could not be made (logged once); modules see no session data.
    Unavailable,
}

impl Published {
    /// Publishes `view` for the first time (no segment yet).
    pub(crate) fn new(view: &SessionView) -> Self {
        let (tx, _) = watch::channel(Arc::new(view.clone()));
        Self {
            tx,
            shm: Segment::NotYet,
        }
    }

    /// Mirrors `view` into shared memory (if made) and hands it to the commands.
    pub(crate) fn publish(&self, view: &SessionView) {
        if let Segment::Made(shm) = &self.shm {
            render::mirror_session(shm, view);
        }
        self.tx.send_replace(Arc::new(view.clone()));
    }

    /// A receiver of every later view, for a new command instance.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<SessionView>> {
        self.tx.subscribe()
    }

    /// The key modules attach the segment with (`-mem_ses`), making and filling the segment
    /// if this is the first time; empty if it cannot be made (a session still works, its
    /// modules then see no session data).
    pub(crate) fn shm_key(&mut self) -> String {
        if let Segment::NotYet = self.shm {
            self.shm = match mrci_shm::SessionShm::create() {
                Ok(shm) => {
                    render::mirror_session(&shm, &self.tx.borrow());
                    Segment::Made(shm)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "session shared memory unavailable");
                    Segment::Unavailable
                }
            };
        }
        match &self.shm {
            Segment::Made(shm) => shm.key().to_owned(),
            Segment::NotYet | Segment::Unavailable => String::new(),
        }
    }
}

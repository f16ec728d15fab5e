//! How a session looks from outside: its PEER_INFO and MY_INFO payloads (PROTOCOL.md
//! §3.3.8–3.3.9) and its shared-memory mirror (seed 000 §6.2).
//!
//! Invariant: these are pure functions of a [`SessionView`]; the session calls them after
//! every change, so what modules and peers see never runs ahead of the view.

use bytes::{Bytes, BytesMut};
use mrci_proto::{
    UserId,
    payload::{MyInfo, PeerInfo},
};

use super::SessionView;

/// The PEER_INFO of a session.
pub(crate) fn peer_info(view: &SessionView) -> PeerInfo {
    let user = view.user.as_ref();
    PeerInfo {
        session_id: view.sid,
        user_id: user.map_or(UserId::ZERO, |u| u.user_id),
        user_name: user.map_or_else(String::new, |u| u.user_name.clone()),
        app_name: view.app.clone(),
        display_name: user.map_or_else(String::new, |u| u.display_name.clone()),
    }
}

/// The PEER_INFO payload of a session.
pub(crate) fn peer_info_payload(view: &SessionView) -> Bytes {
    let mut out = BytesMut::with_capacity(PeerInfo::LEN);
    peer_info(view).write(&mut out);
    out.freeze()
}

/// The MY_INFO payload of a session.
pub(crate) fn my_info_payload(view: &SessionView) -> Bytes {
    let user = view.user.as_ref();
    let info = MyInfo {
        peer: peer_info(view),
        email: user.map_or_else(String::new, |u| u.email.clone()),
        host_rank: view.rank(),
        email_verified: user.is_some_and(|u| u.email_verified),
    };
    let mut out = BytesMut::with_capacity(MyInfo::LEN);
    info.write(&mut out);
    out.freeze()
}

/// Copies the session's view into its shared-memory segment.
pub(crate) fn mirror_session(shm: &mrci_shm::SessionShm, view: &SessionView) {
    let user = view.user.as_ref();
    let mut seg = match shm.lock() {
        Ok(seg) => seg,
        Err(e) => {
            tracing::warn!(error = %e, "cannot lock the session shared memory; not mirrored");
            return;
        }
    };
    seg.set_session_id(&view.sid.0);
    seg.set_user_id(&user.map_or(UserId::ZERO, |u| u.user_id).0);
    seg.set_client_ip(&view.ip.to_string());
    seg.set_client_app(&view.app);
    seg.set_user_name(user.map_or("", |u| &u.user_name));
    seg.set_display_name(user.map_or("", |u| &u.display_name));
    seg.set_host_rank(view.rank());
    seg.set_owner_override(view.owner_override);
    seg.set_active_update(view.active);
    seg.set_channels(&view.channels);
    let subs = |writable_only: bool| -> Vec<mrci_shm::SubCh> {
        view.open
            .iter()
            .filter(|o| !writable_only || o.writable)
            .map(|o| mrci_shm::SubCh {
                ch_id: o.key.ch_id,
                sub_id: o.key.sub_id,
            })
            .collect()
    };
    seg.set_open_subs(&subs(false));
    seg.set_writable_subs(&subs(true));
    let sids =
        |list: &[mrci_proto::SessionId]| -> Vec<[u8; 28]> { list.iter().map(|s| s.0).collect() };
    seg.set_pending_p2p(&sids(&view.p2p.pending()));
    seg.set_accepted_p2p(&sids(view.p2p.accepted()));
}

#[cfg(test)]
mod tests {
    use mrci_proto::SessionId;

    use super::*;
    use crate::session::UserView;

    #[test]
    fn mirror_writes_the_session_view_into_shared_memory() {
        let shm = mrci_shm::SessionShm::create().expect("shared memory");
        let mut view = SessionView::new(
            SessionId([7; 28]),
            crate::host::normalise_ip("::ffff:10.1.2.3".parse().expect("address")),
            "client app".into(),
            true,
        );
        mirror_session(&shm, &view);
        view.user = Some(UserView {
            user_id: UserId([9; 32]),
            user_name: "alice".into(),
            display_name: "Alice".into(),
            email: String::new(),
            group_name: "users".into(),
            host_rank: 2,
            email_verified: false,
            created_at: 0,
        });
        mirror_session(&shm, &view);
        let reader = mrci_shm::SessionShm::attach(shm.key()).expect("attach");
        let seg = reader.lock().expect("lock");
        assert_eq!(seg.session_id(), [7; 28]);
        assert_eq!(seg.client_ip(), "10.1.2.3");
        assert_eq!(
            (seg.user_name(), seg.display_name(), seg.host_rank()),
            ("alice".into(), "Alice".into(), 2)
        );
        assert_eq!(seg.user_id(), [9; 32]);
        assert_eq!(seg.client_app(), "client app");
    }
}

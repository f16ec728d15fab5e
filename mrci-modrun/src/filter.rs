//! What the host accepts from a module: NEW_CMD and ERR in list mode (§5.4), client-bound
//! output and validated async requests in run mode (§5.5.2, §5.6, §9 item 20).
//!
//! Invariant: a frame that reaches the caller as [`Classified::Output`] has a type a module
//! may send to a client and a payload that parses; a [`ModuleRequest`] names a defined,
//! module-requestable async id with a well-formed payload. Everything else is a
//! [`Classified::Drop`] with a reason for the log.

use mrci_proto::{
    IpcFrame, SubChKey, TypeId,
    async_cmd::AsyncCmd,
    async_id::{HostExtId, RequestId, Scope},
    payload::{AsyncRequest, NewCmd, Payload},
    text,
};

/// A validated async request from a run-mode module (PROTOCOL.md §5.6).
///
/// Only checks that need no session state are done here; the session must still check
/// entitlements that depend on its state (own SID in P2P and CLOSE_P2P, writable
/// sub-channels in casts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleRequest {
    /// The IPC type the module used (PRIV_IPC, PUB_IPC or PUB_IPC_WITH_FEEDBACK). Route by
    /// [`ModuleRequest::scope`], not by this (PROTOCOL.md §4.5).
    pub via: TypeId,
    /// The request.
    pub request: Request,
}

/// The two families of module requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// A seed async command (never a host-only one).
    Seed(AsyncCmd),
    /// A host-internal extension request (PROTOCOL.md §4.4), for the module's own session.
    Ext(ExtRequest),
}

/// A host-internal extension request (PROTOCOL.md §4.4). KEEP_ALIVE never appears: it only
/// resets the idle timer and is swallowed by the supervisor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtRequest {
    /// Cast PING_PEERS to the session's sub-channels.
    PingPeers,
    /// Open a sub-channel.
    OpenSubCh(SubChKey),
    /// Close a sub-channel.
    CloseSubCh(SubChKey),
    /// Reload the ban cache.
    UpdateBans,
    /// Set the working directory for future module processes.
    SetDir(String),
    /// Append text to the host's debug log.
    DebugText(String),
    /// Route all client input to this instance.
    HookInput,
    /// Set the session's channel owner override.
    OwnerOverride(bool),
}

impl ModuleRequest {
    /// Where the session delivers this request.
    pub fn scope(&self) -> Scope {
        match &self.request {
            Request::Seed(cmd) => cmd.id().scope().unwrap_or(Scope::HostOnly),
            Request::Ext(_) => Scope::Private,
        }
    }
}

/// What to do with one frame from a module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Classified {
    /// List mode: a valid command announcement.
    NewCmd(NewCmd),
    /// List mode: an error message for the host log.
    ErrText(String),
    /// Run mode: forward to the client on the instance's pair.
    Output(IpcFrame),
    /// Run mode: an async request for the session.
    Request(ModuleRequest),
    /// Accepted and consumed here (KEEP_ALIVE).
    Swallow,
    /// Ignored; the reason is for the log.
    Drop(String),
}

/// Classifies a frame from a list-mode module: only NEW_CMD and ERR count (seed 001).
pub fn classify_list(frame: &IpcFrame) -> Classified {
    match frame.type_id {
        TypeId::NEW_CMD => match NewCmd::parse(&frame.payload) {
            Ok(cmd) => Classified::NewCmd(cmd),
            Err(e) => Classified::Drop(format!(
                "invalid NEW_CMD ({} bytes): {e}",
                frame.payload.len()
            )),
        },
        TypeId::ERR => Classified::ErrText(text::decode(&frame.payload)),
        other => Classified::Drop(format!("{other:?} is ignored in list mode")),
    }
}

/// Classifies a frame from a run-mode module.
pub fn classify_run(frame: IpcFrame) -> Classified {
    match frame.type_id {
        TypeId::PRIV_IPC | TypeId::PUB_IPC | TypeId::PUB_IPC_WITH_FEEDBACK => {
            classify_request(&frame)
        }
        TypeId::GEN_FILE
        | TypeId::TEXT
        | TypeId::ERR
        | TypeId::PRIV_TEXT
        | TypeId::IDLE
        | TypeId::FILE_INFO
        | TypeId::BYTES
        | TypeId::SESSION_ID
        | TypeId::BIG_TEXT
        | TypeId::CH_MEMBER_INFO
        | TypeId::CH_ID => match Payload::parse(frame.type_id, &frame.payload) {
            Ok(_) => Classified::Output(frame),
            Err(e) => Classified::Drop(format!("malformed {:?}: {e}", frame.type_id)),
        },
        other => Classified::Drop(format!("{other:?} may not be sent by a module")),
    }
}

fn classify_request(frame: &IpcFrame) -> Classified {
    let req = match AsyncRequest::parse(&frame.payload) {
        Ok(req) => req,
        Err(e) => return Classified::Drop(format!("malformed async request: {e}")),
    };
    let request = match RequestId::from_wire(req.async_id.0) {
        None => return Classified::Drop(format!("async id {} is undefined", req.async_id.0)),
        Some(RequestId::Seed(id)) if id.is_host_only() => {
            return Classified::Drop(format!("async id {id:?} is host-only"));
        }
        Some(RequestId::Seed(id)) => match AsyncCmd::parse(id, &req.data) {
            Ok(AsyncCmd::Cast { frame: f, .. } | AsyncCmd::LimitedCast { frame: f, .. })
                if f.type_id == TypeId::PING_PEERS =>
            {
                return Classified::Drop(format!("{id:?} may not carry PING_PEERS"));
            }
            Ok(cmd) => Request::Seed(cmd),
            Err(e) => return Classified::Drop(format!("async id {id:?} blocked: {e}")),
        },
        Some(RequestId::Ext(ext)) => match parse_ext(ext, &req.data) {
            Ok(Some(ext)) => Request::Ext(ext),
            Ok(None) => return Classified::Swallow,
            Err(why) => return Classified::Drop(format!("{} blocked: {why}", ext.name())),
        },
    };
    Classified::Request(ModuleRequest {
        via: frame.type_id,
        request,
    })
}

/// Parses an extension request; `Ok(None)` for KEEP_ALIVE.
fn parse_ext(ext: HostExtId, data: &[u8]) -> Result<Option<ExtRequest>, String> {
    let empty = |req: ExtRequest| {
        if data.is_empty() {
            Ok(Some(req))
        } else {
            Err(format!("expected no payload, got {} bytes", data.len()))
        }
    };
    match ext {
        HostExtId::KEEP_ALIVE => Ok(None),
        HostExtId::PING_PEERS => empty(ExtRequest::PingPeers),
        HostExtId::UPDATE_BANS => empty(ExtRequest::UpdateBans),
        HostExtId::HOOK_INPUT => empty(ExtRequest::HookInput),
        HostExtId::OPEN_SUBCH => SubChKey::parse(data)
            .map(|k| Some(ExtRequest::OpenSubCh(k)))
            .map_err(|e| e.to_string()),
        HostExtId::CLOSE_SUBCH => SubChKey::parse(data)
            .map(|k| Some(ExtRequest::CloseSubCh(k)))
            .map_err(|e| e.to_string()),
        HostExtId::SET_DIR => match text::decode(data) {
            dir if dir.trim().is_empty() => Err("empty directory".into()),
            dir => Ok(Some(ExtRequest::SetDir(dir))),
        },
        HostExtId::DEBUG_TEXT => Ok(Some(ExtRequest::DebugText(text::decode(data)))),
        _ => match data {
            [flag @ (0 | 1)] => Ok(Some(ExtRequest::OwnerOverride(*flag == 1))),
            _ => Err("expected one byte, 0 or 1".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, Bytes, BytesMut};
    use mrci_proto::{CmdId, SubChList, async_cmd::Embedded, async_id::AsyncId};

    use super::*;

    fn request(via: TypeId, id: u16, data: &[u8]) -> IpcFrame {
        let mut out = BytesMut::new();
        AsyncRequest {
            async_id: CmdId(id),
            data: Bytes::copy_from_slice(data),
        }
        .write(&mut out);
        IpcFrame::new(via, out.freeze())
    }

    fn new_cmd(name: &str) -> IpcFrame {
        let mut out = BytesMut::new();
        NewCmd {
            name: name.into(),
            ..NewCmd::default()
        }
        .write(&mut out);
        IpcFrame::new(TypeId::NEW_CMD, out.freeze())
    }

    #[test]
    fn list_mode_takes_only_valid_new_cmd_and_err() {
        assert!(
            matches!(classify_list(&new_cmd("Echo")), Classified::NewCmd(c) if c.name == "echo")
        );
        assert!(matches!(
            classify_list(&new_cmd("two words")),
            Classified::Drop(_)
        ));
        let short = IpcFrame::new(TypeId::NEW_CMD, vec![0u8; 258]);
        assert!(matches!(classify_list(&short), Classified::Drop(_)));
        let err = IpcFrame::with_text(TypeId::ERR, "too old");
        assert_eq!(classify_list(&err), Classified::ErrText("too old".into()));
        let text = IpcFrame::with_text(TypeId::TEXT, "hi");
        assert!(matches!(classify_list(&text), Classified::Drop(_)));
    }

    #[test]
    fn run_mode_forwards_client_types_only() {
        let text = IpcFrame::with_text(TypeId::TEXT, "hi");
        assert_eq!(classify_run(text.clone()), Classified::Output(text));
        let idle = IpcFrame::new(TypeId::IDLE, Bytes::new());
        assert_eq!(classify_run(idle.clone()), Classified::Output(idle));
        for t in [
            TypeId::HOST_CERT,
            TypeId::HOST_VER,
            TypeId::NEW_CMD,
            TypeId::CMD_ID,
            TypeId::KILL_CMD,
            TypeId::TERM_CMD,
            TypeId::PING_PEERS,
            TypeId(200),
        ] {
            assert!(
                matches!(
                    classify_run(IpcFrame::new(t, Bytes::new())),
                    Classified::Drop(_)
                ),
                "{t:?}"
            );
        }
        let bad_idle = IpcFrame::new(TypeId::IDLE, vec![1]);
        assert!(matches!(classify_run(bad_idle), Classified::Drop(_)));
    }

    #[test]
    fn seed_requests_are_parsed_and_scoped() {
        let frame = request(TypeId::PRIV_IPC, 18, &[]);
        let Classified::Request(req) = classify_run(frame) else {
            panic!("END_SESSION refused");
        };
        assert_eq!(req.request, Request::Seed(AsyncCmd::EndSession));
        assert_eq!(req.scope(), Scope::Private);
    }

    #[test]
    fn host_only_undefined_and_malformed_requests_are_dropped() {
        for (id, data) in [
            (AsyncId::RDY.0, &b""[..]),
            (AsyncId::TO_PEER.0, &[0u8; 40][..]),
            (AsyncId::ADD_CMD.0, &[][..]),
            (AsyncId::MAXSES.0, &[1, 2][..]),
            (99, &[][..]),
        ] {
            let frame = request(TypeId::PUB_IPC, u16::from(id), data);
            assert!(matches!(classify_run(frame), Classified::Drop(_)), "{id}");
        }
        let frame = IpcFrame::new(TypeId::PRIV_IPC, vec![5]);
        assert!(matches!(classify_run(frame), Classified::Drop(_)));
    }

    #[test]
    fn casting_ping_peers_is_refused() {
        let mut data = BytesMut::new();
        AsyncCmd::Cast {
            subs: SubChList::default(),
            frame: Embedded {
                type_id: TypeId::PING_PEERS,
                data: Bytes::new(),
            },
        }
        .write(&mut data);
        let frame = request(TypeId::PUB_IPC, 5, &data);
        assert!(matches!(classify_run(frame), Classified::Drop(_)));
    }

    #[test]
    fn extension_requests() {
        let keep = request(TypeId::PRIV_IPC, 48, &[]);
        assert_eq!(classify_run(keep), Classified::Swallow);
        let mut key = BytesMut::new();
        key.put_u64_le(7);
        key.put_u8(2);
        let open = request(TypeId::PRIV_IPC, 45, &key);
        let Classified::Request(req) = classify_run(open) else {
            panic!("OPEN_SUBCH refused");
        };
        assert_eq!(
            req.request,
            Request::Ext(ExtRequest::OpenSubCh(SubChKey {
                ch_id: 7,
                sub_id: 2
            }))
        );
        assert!(matches!(
            classify_run(request(TypeId::PRIV_IPC, 45, &key[..8])),
            Classified::Drop(_)
        ));
        assert!(matches!(
            classify_run(request(TypeId::PRIV_IPC, 52, &[2])),
            Classified::Drop(_)
        ));
        assert!(matches!(
            classify_run(request(TypeId::PRIV_IPC, 47, &[1])),
            Classified::Drop(_)
        ));
        let dir = request(TypeId::PRIV_IPC, 49, &text::encode("/tmp"));
        assert!(matches!(classify_run(dir), Classified::Request(_)));
    }
}

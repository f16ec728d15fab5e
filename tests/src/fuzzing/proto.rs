//! Targets `frame`, `header` and `payload`: the wire formats a client or a module controls
//! byte for byte, before any host logic runs.
//!
//! Invariant checked: no parser panics; what parses writes back to something that parses to
//! the same value (and, for the fixed-layout host header, to the same bytes); frame decoding
//! keeps the properties of [`super::stream`].

use mrci_proto::{
    SessionId, SubChKey, SubChList, TypeId, UserId,
    async_cmd::AsyncCmd,
    async_id::AsyncId,
    codec::{IpcCodec, MrciCodec},
    header::{ClientHeader, HostHeader},
    payload::{GenFileArgs, Payload},
    text,
};

use super::stream::{self, Params};

/// Bytes 0–2 choose the maximum payload and the piece size (see `Params`); the rest is
/// decoded as a stream of MRCI frames and, separately, of IPC frames.
pub fn frame(data: &[u8]) {
    let Some(p) = Params::parse(data) else {
        return;
    };
    stream::check(&MrciCodec::with_max(p.max), &p);
    stream::check(&IpcCodec::with_max(p.max), &p);
}

/// The input as a client header and a host header (whole, and its first bytes with the
/// `MRCI` tag put in front), and as the two names of a client header to write.
pub fn header(data: &[u8]) {
    client_header(data);
    host_header(data);
    if let Some(body) = data.get(..ClientHeader::LEN - ClientHeader::TAG.len()) {
        let mut tagged = ClientHeader::TAG.to_vec();
        tagged.extend_from_slice(body);
        client_header(&tagged);
    }
    if let Some(head) = data.get(..HostHeader::LEN) {
        host_header(head);
    }
    write_client_header(data);
}

fn client_header(bytes: &[u8]) {
    let Ok(header) = ClientHeader::parse(bytes) else {
        return;
    };
    for name in [&header.app_name, &header.common_name] {
        assert_eq!(
            name.trim(),
            name,
            "a parsed name keeps surrounding whitespace"
        );
        assert!(!name.contains('\0'), "a parsed name holds NUL");
    }
    let again = ClientHeader::parse(&header.to_bytes());
    assert_eq!(again.ok(), Some(header), "client header round trip");
}

fn host_header(bytes: &[u8]) {
    if let Ok(header) = HostHeader::parse(bytes) {
        assert_eq!(&header.to_bytes()[..], bytes, "host header round trip");
    }
}

fn write_client_header(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (app, cn) = text.split_at(text.floor_char_boundary(text.len() / 2));
    let header = ClientHeader {
        app_name: app.into(),
        common_name: cn.into(),
    };
    let bytes = header.to_bytes();
    assert_eq!(bytes.len(), ClientHeader::LEN);
    let parsed = ClientHeader::parse(&bytes).expect("a written client header parses");
    let fits =
        |s: &str, field: usize| !s.contains('\0') && s.trim() == s && text::units(s) * 2 <= field;
    if fits(app, 134) && fits(cn, 272) {
        assert_eq!(parsed, header, "names that fit survive writing");
    } else {
        assert!(
            app.contains(&parsed.app_name),
            "app name not a part of the input"
        );
        assert!(
            cn.contains(&parsed.common_name),
            "common name not a part of the input"
        );
    }
}

/// Byte 0 is a type id (and, separately, an async id); the rest is that type's payload.
pub fn payload(data: &[u8]) {
    let [id, rest @ ..] = data else {
        return;
    };
    let type_id = TypeId(*id);
    if let Ok(value) = Payload::parse(type_id, rest) {
        let again = Payload::parse(type_id, &value.to_bytes());
        assert_eq!(again.ok(), Some(value), "{type_id:?} payload round trip");
    }
    async_cmd(AsyncId(*id), rest);
    typed(rest);
}

/// An async command's payload as a client receives it (or a module sends it after its id).
pub(crate) fn async_cmd(id: AsyncId, data: &[u8]) -> Option<AsyncCmd> {
    let cmd = AsyncCmd::parse(id, data).ok()?;
    assert_eq!(cmd.id(), id);
    let again = AsyncCmd::parse(id, &cmd.to_bytes());
    assert_eq!(again.as_ref().ok(), Some(&cmd), "{id:?} round trip");
    Some(cmd)
}

/// GEN_FILE arguments (UTF-16 TEXT) parse back from what they write.
pub(crate) fn gen_file_args(data: &[u8]) {
    if let Ok(args) = GenFileArgs::parse(data) {
        let again = GenFileArgs::parse(&args.to_bytes());
        assert_eq!(again.ok(), Some(args), "GEN_FILE arguments round trip");
    }
}

/// The parsers below [`Payload`]: GEN_FILE arguments, ids, sub-channel lists and text forms.
fn typed(data: &[u8]) {
    gen_file_args(data);
    if let Ok(list) = SubChList::parse(data) {
        assert_eq!(&list.to_bytes()[..], data, "sub-channel list round trip");
        assert!(list.iter().all(|k| !k.is_empty()) && list.len() <= 6);
    }
    if let Ok(key) = SubChKey::parse(data) {
        assert_eq!(&key.to_bytes()[..], data, "sub-channel key round trip");
    }
    if let Ok(sid) = SessionId::parse(data) {
        assert_eq!(&sid.0[..], data);
    }
    if let Ok(uid) = UserId::parse(data) {
        assert_eq!(&uid.0[..], data);
    }
    let decoded = text::decode(data);
    assert_eq!(
        text::decode(&text::encode(&decoded)),
        decoded,
        "TEXT round trip"
    );
    let _ = (
        text::read_fixed(data),
        text::read_fixed_strict(data, "field"),
    );
    if let Ok((s, tail)) = text::read_terminated(data) {
        assert!(data.ends_with(tail) && !s.contains('\0'));
    }
}

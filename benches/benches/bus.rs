//! The bus's routing decision with 10,000 registered sessions: who receives a cast to one
//! sub-channel (10 and 100 subscribers), a limited cast, and a channel event.
#![forbid(unsafe_code)]

use criterion::{Criterion, criterion_group, criterion_main};
use mrci_host::bus::BusState;
use mrci_proto::{SessionId, SubChKey, SubChList, UserId};

const SESSIONS: u32 = 10_000;

fn sid(n: u32) -> SessionId {
    let mut id = [0u8; 28];
    id[..4].copy_from_slice(&n.to_le_bytes());
    SessionId(id)
}

fn list(keys: &[SubChKey]) -> SubChList {
    let mut list = SubChList::default();
    for key in keys {
        list.insert(*key);
    }
    list
}

/// 10,000 sessions; sessions 0..`subscribers` have sub-channel (1, 0) open, the rest are
/// spread over 1,000 other channels with two sub-channels each, and every session is a
/// member of its channel.
fn populated(subscribers: u32) -> BusState {
    let mut bus = BusState::default();
    for n in 0..SESSIONS {
        bus.register(sid(n));
        let mut uid = [0u8; 32];
        uid[..4].copy_from_slice(&(n % 5_000).to_le_bytes());
        bus.set_user(&sid(n), Some(UserId(uid)));
        let ch = if n < subscribers {
            1
        } else {
            2 + u64::from(n % 1_000)
        };
        let open = list(&[
            SubChKey {
                ch_id: ch,
                sub_id: 0,
            },
            SubChKey {
                ch_id: ch,
                sub_id: 1,
            },
        ]);
        bus.set_open(&sid(n), open, n % 2 == 0);
        bus.set_channels(&sid(n), &[ch]);
    }
    bus
}

fn routing(c: &mut Criterion) {
    let header = list(&[SubChKey {
        ch_id: 1,
        sub_id: 0,
    }]);
    for subscribers in [10, 100] {
        let bus = populated(subscribers);
        c.bench_function(&format!("bus/cast_targets/{subscribers}_of_10000"), |b| {
            b.iter(|| bus.cast_targets(&sid(0), std::hint::black_box(&header), false));
        });
        c.bench_function(
            &format!("bus/limited_cast_targets/{subscribers}_of_10000"),
            |b| {
                b.iter(|| bus.cast_targets(&sid(0), std::hint::black_box(&header), true));
            },
        );
    }
    let bus = populated(10);
    c.bench_function("bus/channel_targets/10000", |b| {
        b.iter(|| {
            bus.channel_targets(
                std::hint::black_box(500),
                None,
                mrci_host::bus::SubReach::All,
            )
        });
    });
}

criterion_group!(benches, routing);
criterion_main!(benches);

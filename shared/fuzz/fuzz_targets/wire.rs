//! The wire protocol from an untrusted peer: arbitrary bytes as frames, each message and each
//! batch decoded. No panic, no allocation past the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_record::wire::{FrameReader, HubMessage, SensorMessage};

fuzz_target!(|data: &[u8]| {
    let mut sensor = FrameReader::default();
    let mut hub = FrameReader::default();
    for chunk in data.chunks(37) {
        sensor.push(chunk);
        hub.push(chunk);
    }
    while let Ok(Some(m)) = sensor.next_message::<SensorMessage>() {
        if let SensorMessage::Batch(b) = m {
            let _ = b.decode();
        }
    }
    while let Ok(Some(_)) = hub.next_message::<HubMessage>() {}
});

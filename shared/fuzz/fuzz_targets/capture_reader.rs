//! pcap/pcapng readers and the whole engine on arbitrary file bytes: never a panic, and every
//! reader error points inside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_decode::capture::CaptureReader;
use tapline_decode::{EngineConfig, decode_capture};

fuzz_target!(|data: &[u8]| {
    if let Ok(reader) = CaptureReader::new(data) {
        for item in reader {
            if let Err(e) = item {
                assert!(e.offset <= data.len() as u64, "error offset past the end: {e}");
                break;
            }
        }
    }
    let _ = decode_capture(data, EngineConfig::default());
});

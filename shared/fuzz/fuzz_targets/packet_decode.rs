//! Link, IP and TCP layer decoding for every supported link type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tapline_decode::capture::LinkType;
use tapline_decode::packet;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    const LINKS: [u16; 9] = [1, 0, 101, 108, 113, 276, 239, 228, 229];
    let link = LinkType(LINKS[usize::from(sel) % LINKS.len()]);
    let _ = packet::decode(link, frame);
});

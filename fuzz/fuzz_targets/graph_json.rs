#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| foldertrack_fuzz::entries::graph_json(data));

//! Any text as a measure file (`--measures`): accepted or refused with a message, never a
//! panic; an accepted file gives measures each found by its own code.
#![no_main]

use sustain::domain::registry::Registry;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(registry) = Registry::builtin().with_overrides(text) {
        for m in registry.measures() {
            assert!(registry.find(&m.code).is_some(), "a measure cannot be found by its own code");
        }
    }
});

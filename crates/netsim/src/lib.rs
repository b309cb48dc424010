//! A seeded network emulator on a virtual clock. (Being written.)
#![forbid(unsafe_code)]

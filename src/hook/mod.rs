//! The hook and status-line hot path: `blueplane hook claude` and `blueplane statusline`.
//!
//! (On this branch only the event lists that `install` registers; the hot path itself
//! arrives from main.)

pub mod events;

//! `nudge graph` (being built).

//! `nudge report` (being built).

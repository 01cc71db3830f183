//! `nudge preview` (being built).

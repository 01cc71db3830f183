//! `nudge plan` (being built).

//! `nudge explain` (being built).

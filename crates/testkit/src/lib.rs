//! Test support for Nudge: [`contract`], the suite every `Store` implementation must pass;
//! [`guarantee`], the send guarantee under crashes at every point, on any `Store`;
//! [`faults`], the seeded fault harness (wrappers of the ports, a driver and the oracle);
//! [`moto`], raw access to the AWS emulator the moto-backed tests run against; and [`pii`],
//! which finds customers' addresses and names in logs.

#![warn(missing_docs)]

pub mod contract;
pub mod faults;
pub mod guarantee;
pub mod moto;
pub mod pii;

//! The messages with more than a couple of fields, one module per family. Each struct documents
//! its wire format; the one- and two-field messages are variants of [`crate::Packet`] directly.

mod connect;
mod publish;
mod register;
mod subscribe;
mod will;

pub use connect::Connect;
pub use publish::Publish;
pub use register::Register;
pub use subscribe::{Subscribe, Unsubscribe};
pub use will::WillTopic;

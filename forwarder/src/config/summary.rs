//! `Display` of [`Settings`]: the effective configuration as `check-config` prints it.

use std::fmt;

use sn_config::duration::format as dur;

use super::validate::group_text;
use crate::core::wnid::hex;
use crate::io::config::{FlowControl, PortKind, Settings};
use crate::radio::Framing;

impl fmt::Display for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (c, io) = (&self.core, &self.io);
        match c.gateway {
            Some(g) => writeln!(f, "gateway:            {g}")?,
            None => writeln!(
                f,
                "gateway:            discovered (SEARCHGW radius {}, every {} up to {})",
                c.discovery.radius,
                dur(c.discovery.search_initial),
                dur(c.discovery.search_max)
            )?,
        }
        writeln!(f, "gateway socket:     {}", io.bind)?;
        if let Some(g) = &io.group
            && (c.gateway.is_none() || c.relay_advertise)
        {
            writeln!(f, "discovery group:    {}", group_text(g))?;
        }
        writeln!(
            f,
            "relay ADVERTISE:    {}",
            if c.relay_advertise {
                format!("yes, radius {}", c.relay_radius)
            } else {
                "no".to_owned()
            }
        )?;
        writeln!(
            f,
            "nodes:              at most {}, forgotten after {} idle",
            c.max_nodes,
            dur(c.node_idle_timeout)
        )?;
        writeln!(
            f,
            "serial reopen:      {} doubling up to {}",
            dur(io.reopen_initial),
            dur(io.reopen_max)
        )?;
        for (i, p) in io.ports.iter().enumerate() {
            match &p.kind {
                PortKind::Udp(u) => {
                    let b = u
                        .broadcast
                        .map_or_else(|| "every known node".to_owned(), |b| b.to_string());
                    writeln!(f, "port {i} ({}): udp {}, broadcast to {b}", p.name, u.bind)?;
                }
                PortKind::Serial(s) => {
                    let framing = match s.framing {
                        Framing::Xbee { escaped: true } => "xbee-api2",
                        Framing::Xbee { escaped: false } => "xbee-api1",
                        Framing::Slip { addressed: true } => "slip-addressed",
                        Framing::Slip { addressed: false } => "slip",
                        Framing::Raw => "raw",
                    };
                    let flow = match s.flow {
                        FlowControl::None => "none",
                        FlowControl::Hardware => "hardware",
                        FlowControl::Software => "software",
                    };
                    write!(
                        f,
                        "port {i} ({}): serial {} at {} baud, flow {flow}, {framing}",
                        p.name,
                        s.path.display(),
                        s.baud
                    )?;
                    match &s.wnid {
                        Some(w) => writeln!(f, ", wnid {}", hex(w))?,
                        None => writeln!(f)?,
                    }
                }
            }
        }
        Ok(())
    }
}

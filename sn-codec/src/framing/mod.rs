//! Serial framings shared by the forwarder and mote firmware (no_std): XBee API frames, SLIP
//! with CRC-16, and the raw length-delimited form.

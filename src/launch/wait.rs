//! Why an open launch waits, as data.

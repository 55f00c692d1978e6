//! Wiring: channels, tasks and staged shutdown.

//! The end-to-end suite: one binary, a module per topic (one link step).
//! Peers (Xvfb, D-Bus, gnome-keyring) are started by `harness` on this
//! machine and stopped when the test ends.

mod architecture;
mod call_audio;
mod card;
mod cli;
mod gui;
mod harness;
mod keyring;
mod media;
mod notify;
mod packaging;
mod rights;
mod rules;
mod sip;
mod softphone;
mod sync;
mod sync_clone;
mod sync_window;
mod tasks_ui;
mod team;
mod window;

//! The end-to-end suite: one binary, a module per topic (one link step).
//! Peers (Xvfb, D-Bus, gnome-keyring) are started by `harness` on this
//! machine and stopped when the test ends.

mod cli;
mod gui;
mod harness;
mod keyring;
mod window;

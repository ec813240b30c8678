//! The keyboard shortcuts overlay (F1).

use crate::i18n::I18n;

/// Every shortcut of the window, by what it does.
pub const SHORTCUTS: &[(&str, &str)] = &[
    ("F1", "help-toggle"),
    ("Alt+1 … Alt+9", "help-screens"),
    ("Ctrl+F", "help-search"),
    ("Ctrl+N", "help-new-inquiry"),
    ("Ctrl+T", "help-new-task"),
    ("Ctrl+S / Ctrl+Enter", "help-save"),
    ("Esc", "help-close"),
    ("F5", "help-refresh"),
    ("Ctrl+D", "help-dial"),
    ("F9", "help-answer"),
    ("F10", "help-hang-up"),
    ("F8", "help-hold"),
    ("F7", "help-mute"),
];

pub fn help_ui(ctx: &egui::Context, i18n: &I18n, open: &mut bool) {
    egui::Window::new(i18n.tr("help-title")).open(open).collapsible(false).resizable(false).show(ctx, |ui| {
        egui::Grid::new("shortcuts").num_columns(2).striped(true).spacing([16.0, 6.0]).show(ui, |ui| {
            for (keys, what) in SHORTCUTS {
                ui.monospace(*keys);
                ui.label(i18n.tr(what));
                ui.end_row();
            }
        });
    });
}
